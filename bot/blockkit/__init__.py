"""Block Kit building, pure: the leaf package both ``bot.slack`` and ``bot.alerts`` build on.

Nothing here does I/O or imports another part of the bot, so every layer may use it.

``limits``     Slack's message limits, :class:`~bot.blockkit.limits.Reply` (text fallback +
               blocks) and :func:`~bot.blockkit.limits.fit_blocks`, the last guard before a send
``mrkdwn``     :func:`~bot.blockkit.mrkdwn.escape` and friends (code, user, date, duration …)
``blocks``     primitives: ``section``, ``fields_section``, ``context``, ``actions``,
               ``button``, ``overflow``, ``confirm_dialog`` …
``ids``        every ``action_id``, ``block_id`` and ``callback_id`` the bot uses
``sparkline``  ``▁▂▃▄▅▆▇█`` bars of stored samples
"""
