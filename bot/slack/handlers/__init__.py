"""What each `/starpod` subcommand and each button does, as plain async functions.

Every handler takes ``(services, invocation, command)``, answers through the invocation
and fills its audit draft; raising ``UserError``/``BackendError`` is how a handler says
"tell the user"; the app's error handler does the telling.
"""
