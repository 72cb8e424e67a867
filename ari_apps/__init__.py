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

Several nodes: each node runs Asterisk and a router (``QueueRouter``); all routers
share one PostgreSQL. Tested with two nodes in ``tests/integration/test_multinode.py``.

- **Names and ownership.** Each node has a name, its Asterisk's ``systemname``
  (``callcenter asterisk install --node NAME``; default ``<host>-<6 hex of the home's
  path>``, kept in ``instance.json``). Asterisk prefixes every channel id with it
  (``pbx-east-1764528000.5``), so ids of two nodes never collide in ``queued_calls``;
  the router's node name defaults to it (``GET /asterisk/info``). A router owns the
  callers that entered its own Asterisk (``queued_calls.node``): it re-adopts only
  those after a restart, and its watchdog judges an agent tied to another node's caller
  by time limits only (``reconcile(..., owned_calls=...)``), never by its own channel list.
- **One call per agent.** A reservation is the database's compare-and-set on the agent's
  state and version, so two routers never offer one agent twice. A router learns what
  other routers did to agents by re-reading every agent's state every ``POLL_INTERVAL``
  (1 s): an agent freed on node A is offered node B's waiting caller about one interval
  later (measured 1.01-1.03 s). The order is per node, not global: each router ranks
  its own callers, and the node where an agent frees up knows it first (up to one
  interval ahead), so its callers tend to win that agent even when another node's caller
  has waited longer. A global order needs the decision to read every node's waiting
  callers from ``queued_calls`` (next step).
- **How an agent registered on node A takes node B's caller: (a), the softphone
  registers on every node.** One account per node (baresip: one ``uanew`` each;
  multi-account softphones and multi-registrar deployments do the same); each node rings
  its own registration of the agent (``PJSIP/<agent>`` on that node), and the
  reservation keeps the agent to one call at a time across nodes. Nothing else moves:
  no trunk between nodes, media stays on the caller's node, unpatched Asterisk. The
  agents' passwords must be the same on every node: copy ``agent_passwords`` of the first
  node's ``secrets.json`` into each other home before ``callcenter apply``.
  Limit: each node judges the phone by its own registration, so a phone registered on
  only some nodes is paused by one router (``unregistered``) and resumed by another;
  register on all nodes (per-node reachability is the next step).
- **(b), for agents who register on one node only** (a desk phone, a softphone with one
  account; designed, not built yet): node B rings the agent through node A. Each node
  would get a generated PJSIP trunk per peer node (``cc-node-<peer>``: endpoint + AOR at
  the peer's SIP address + ``identify``, authenticated by source address or digest), the
  agent a home node (a new key, e.g. ``agents.<name>.node``), and on other nodes the agent's dial string becomes
  ``PJSIP/<agent>@cc-node-<home>`` (a ``device:``-like route); node A's context for that
  trunk accepts only ``<agent>`` extensions and dials ``PJSIP/<agent>``. The router code
  does not change (it dials ``dial_string(agent)``); what is judged on which node does:
  only the home node judges the phone's registration. Costs: media crosses two
  Asterisks, a trunk per pair of nodes (N x (N-1)), and one more hop that can fail.
- **(c), moving the caller** to the agent's node (transfer or re-originate) was not
  chosen: the caller's owner changes mid-call, which breaks restart safety and records.
- **More nodes.** Nothing above is specific to two (only two are tested): every router
  polls one table and reserves with one compare-and-set. Each poll reads every agent (nodes x agents rows a
  second); PostgreSQL ``LISTEN/NOTIFY`` on state changes would cut both the load and the
  1 s delay.
"""
