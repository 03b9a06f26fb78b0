"""WeChat: the client factory (``client.py``), the calls the project makes (``api.py``), and the
local WeChat sandbox that stands in for WeChat in development and tests (``sandbox/``)."""
