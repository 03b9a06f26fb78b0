"""The local WeChat sandbox: WeChat's own endpoints under ``/_wechat/`` (``/_wechat/cgi-bin/token``,
``/_wechat/sns/jscode2session`` …) with WeChat's request and response shapes and error codes, controls
for tests and demos under ``/_wechat/sandbox/``, and the 模拟微信 page at ``/_wechat/``.

Registered by ``register_blueprints`` only when ``WECHAT_SANDBOX`` is on, which production (it sets
``WECHAT_APPID``) never is. Its state lives in ``state.py``'s SQLite file, shared by every worker.
"""
