"""Stasis applications, one module per app (``Stasis(<app>,...)`` in the dialplan).

The first one, the queue router ``cc-queue``, comes with the inbound ACD. Its
contract is already fixed by the generated dialplan::

    Stasis(cc-queue,<queue>,skills=a+b,priority=N,language=xx,entry=<entry>,account=<id>)

and proven by ``tests/integration/test_queue_handoff.py``. While no app is
registered, Stasis fails and the queue's ``fallback`` destination takes the call.
Apps talk to Asterisk through :class:`callcenter.asterisk.ari.ARIClient`.
"""
