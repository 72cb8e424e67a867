"""The outbound dialer's dialplan: answering-machine detection (pure).

Generated only when the config has trunks (nothing dials out without one)::

    [cc-dialer-amd]
    exten => s,1,NoOp(callcenter dialer AMD on ${CHANNEL(name)})
     same => n,AMD(2500,1500,800,5000,100,50,3,256,5000)
     same => n,Set(CC_AMD=${AMDSTATUS}:${AMDCAUSE})
     same => n,Stasis(cc-dialer,amd)
     ...
    exten => beep,1,NoOp(callcenter dialer waits for the beep on ${CHANNEL(name)})
     same => n,WaitForSilence(1500,1,20)
     same => n,Set(CC_AMD_BEEP=${WAITSTATUS})
     same => n,Stasis(cc-dialer,beep)
     ...

Contract: the placer (:mod:`callcenter.dialer.placer`) originates
``Local/<number>@cc-trunk-<name>-out`` into its Stasis app ``cc-dialer``; once the callee
answers it sends the channel here (``continue`` to ``cc-dialer-amd,s,1``). ``AMD()``
listens to the first seconds of the callee's audio, ``CC_AMD`` keeps its verdict
(``MACHINE:MAXWORDS-3-3``, parsed by :func:`callcenter.dialer.amd.parse_amd`), and the
call goes back to ``cc-dialer`` with the argument ``amd``. If the dialer is gone
(``STASISSTATUS`` FAILED) the call is hung up with cause 41 and a warning: a call never
falls off the dialplan.

A machine that is to get a message (``amd.on_machine: leave_message``) is sent on to the
``beep`` extension (``continue``): ``WaitForSilence()`` returns once the greeting and its
beep are over (the machine records in silence), ``CC_AMD_BEEP`` keeps ``WAITSTATUS``, and
the call goes back to ``cc-dialer`` with the argument ``beep``, where the dialer plays the
message over ARI (:mod:`callcenter.dialer.machine_message`): the sound's name never enters
the dialplan. Nothing from outside reaches this context's text.
"""

from __future__ import annotations

from callcenter.asterisk import variables as V
from callcenter.dialer.amd import (
    AMD_CONTEXT,
    ARG_ANALYSED,
    ARG_BEEP,
    BEEP_EXTEN,
    DIALER_APP,
    AmdSettings,
    BeepSettings,
)

__all__ = ["amd_context"]


def amd_context(settings: AmdSettings | None = None, beep: BeepSettings | None = None) -> str:
    """The ``cc-dialer-amd`` context, as dialplan text."""
    s = settings or AmdSettings()
    b = beep or BeepSettings()
    lines = [
        f"[{AMD_CONTEXT}]",
        "; Answering-machine detection for the outbound dialer: AMD() on the answered",
        f"; call, its verdict in {V.AMD}, then back to Stasis({DIALER_APP}).",
        "exten => s,1,NoOp(callcenter dialer AMD on ${CHANNEL(name)})",
        f" same => n,AMD({s.arguments()})",
        f" same => n,Set({V.AMD}=${{AMDSTATUS}}:${{AMDCAUSE}})",
        f" same => n,Stasis({DIALER_APP},{ARG_ANALYSED})",
        ' same => n,GotoIf($["${STASISSTATUS}" = "FAILED"]?failed)',
        " same => n,Hangup(16)",
        (f" same => n(failed),Log(WARNING,dialer {DIALER_APP} not running: "
         "${CHANNEL(name)} hung up after AMD)"),
        " same => n,Hangup(41)",
        "; A machine to leave a message on: wait until its greeting and beep are over,",
        f"; then back to Stasis({DIALER_APP}), which plays the message.",
        f"exten => {BEEP_EXTEN},1,NoOp(callcenter dialer waits for the beep on ${{CHANNEL(name)}})",
        f" same => n,WaitForSilence({b.arguments()})",
        f" same => n,Set({V.AMD_BEEP}=${{WAITSTATUS}})",
        f" same => n,Stasis({DIALER_APP},{ARG_BEEP})",
        ' same => n,GotoIf($["${STASISSTATUS}" = "FAILED"]?failed)',
        " same => n,Hangup(16)",
        (f" same => n(failed),Log(WARNING,dialer {DIALER_APP} not running: "
         "${CHANNEL(name)} hung up after the beep)"),
        " same => n,Hangup(41)",
    ]
    return "\n".join(lines) + "\n"
