"""WeChat: the client factory (``client.py``) and the calls the project makes (``api.py``). In development
and tests they talk to the local WeChat sandbox, an application of its own (the top-level ``wechat_sandbox``
package) that this package never imports."""
