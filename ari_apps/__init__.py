"""Stasis applications, one module per app (``Stasis(<app>,...)`` in the dialplan).

The first one, the queue router ``cc-queue``, comes with the inbound ACD. Its
contract is fixed by the generated dialplan and lives in one module,
:mod:`callcenter.asterisk.stasis_args` (the generator formats with it, the router
parses with :meth:`QueueCall.parse`)::

    Stasis(cc-queue,<queue>,skills=a+b,priority=N,language=xx,entry=<entry>,account=<id>)

The channel arrives answered (``cc-queue`` answers, whichever route led there).
While no app is registered, Stasis fails and the queue's ``fallback`` takes the call.

How the router is meant to be put together from the parts that have landed
(each is tested on its own; the app joins them):

- **Events**: :class:`callcenter.asterisk.ari.EventDispatcher` gives each caller
  channel, offer channel and bridge one owner with an ordered inbox, run in a
  TaskGroup; a handler error sends the call to the queue's fallback
  (:func:`dialplan_fallback`). ``run_event_loop`` reconnects with jittered
  backoff and ends on ``ApplicationReplaced``.
- **A caller arrives** (StasisStart in ``cc-queue``): parse the args, record the
  call (:class:`callcenter.storage.queued_calls.QueuedCallRepository.enter`)
  *before* acting on it, put the caller in a holding bridge with music on hold,
  ``router.enqueue(...)`` then ``router.select_agent(call, now)``
  (:mod:`callcenter.routing`): an ``Offer``, an ``Overflow`` (continue in the
  dialplan to the overflow destination) or nothing (wait).
- **An offer**: ``AgentStore.try_reserve`` (compare-and-set in the database: one
  agent, one call, across every router instance); on ``None`` try the next
  candidate. Then ``channels.create(agent.dial_string(name), channel_id=<ours>)``,
  wait for that channel's StasisStart, ``channels.dial(timeout=ring_timeout)``.
  ``Dial`` ANSWER: move both into a mixing bridge, state on call; NOANSWER / BUSY
  / CHANUNAVAIL: ``OfferFailed`` (a miss; auto-pause after ``auto_pause_after``),
  next agent. Record each offer (``add_offer`` / ``end_offer``).
- **Hang-ups**: whoever hangs up, the owner tears down the other leg and the
  bridge, and the agent goes to wrap-up (``wrapup`` seconds, then available).
- **An agent becomes free**: ``router.select_call(agent, now)`` across every
  queue the agent serves.
- **Time**: one timer at ``next_change(...)`` re-decides when a waiting caller's
  requirements relax (callers already waiting move on too).
- **Restart**: on (re)connect, ``GET /applications/{app}`` and the channels in it
  plus the ``queued_calls`` rows rebuild the owners (waiting callers in their
  original order), and ``reconcile(...)`` corrects agent states against the live
  channels and contacts.

Several nodes: each node runs Asterisk and a router; all routers share one
PostgreSQL. A reservation is the database's compare-and-set, so two routers
never offer one agent twice. A router only judges the phones registered on its
own Asterisk and the callers it owns (``reconcile(..., owned_calls=...)``); an
agent registered on node A taking node B's caller is rung by B through a PJSIP
endpoint on B that points at A (or at the agent's registrar): the next slice
decides between that and moving the caller.
"""
