"""A campaign's message left on a real answering machine, after its beep.

The node of :mod:`tests.integration.test_dialer_progressive` (our Asterisk, the test
carrier on 127.0.0.2, carmen's baresip phone; a node of this module's own), its campaign
``outbound`` with ``amd: {enabled: true, on_machine: leave_message, message:
vm-tocallback}``. The contact is the carrier's answering machine (``+15550104xxx``): a
greeting of about 8.5 s, a beep, then it records what it hears into a WAV file of its
own (:meth:`callcenter.testing.carrier.Carrier.machine_recordings`).

What is asserted is what happened: AMD says MACHINE, the dialer waits for the beep
(``cc-dialer-amd,beep``: ``WaitForSilence()``) and plays the message; the machine's
recording holds silence (the wait after the beep) then that message -- as long as the
sound, with its loudness envelope (the words and pauses, 20 ms frames) matching the sound
file's, so it started after the beep and was not cut -- the attempt ends ``machine`` with "message vm-tocallback left after the
beep" in its reason, the contact is done (retry.py: a message left closes it), and carmen,
held for the call, is free again. Waits are on the dialer's pulses and AMI events.
"""

from __future__ import annotations

import array
import asyncio
import math
import wave
from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.agents.state import AgentStatus, Login
from callcenter.asterisk.agi.context import utc_now
from callcenter.config.campaign import Amd
from callcenter.config.models import CallCenterConfig
from callcenter.storage.campaigns import CampaignRepository, NewContact
from callcenter.storage.models import (
    AttemptOutcome,
    Contact,
    ContactAttempt,
    ContactState,
)
from callcenter.testing.carrier import Carrier
from tests.integration.carrier_trunk import DialerNode as Node
from tests.integration.test_dialer_progressive import node, start_dialer

pytestmark = pytest.mark.integration

__all__ = ["node"]  # the module's own node (a fixture imported is this module's too)

#: The carrier's answering machine; it records for 15 s after its beep.
MACHINE = "+15550104015"
#: The message left: "... to call back ..." (core sound, about 3.7 s).
MESSAGE = "vm-tocallback"
#: Samples per 20 ms frame at 8 kHz.
FRAME = 160
#: Mean absolute amplitude above which a 20 ms frame is voice (Asterisk's silence is 0).
LOUD = 300


def _leaving(config: CallCenterConfig) -> CallCenterConfig:
    """The config, its campaign leaving :data:`MESSAGE` on machines."""
    campaign = config.campaigns["outbound"]
    amd = Amd.model_validate({"enabled": True, "on_machine": "leave_message",
                              "message": MESSAGE})
    campaign = campaign.model_copy(update={"amd": amd})
    return config.model_copy(update={"campaigns": {**config.campaigns, "outbound": campaign}})


def _envelope(path: Path) -> list[float]:
    """Mean absolute amplitude of each 20 ms frame of an 8 kHz 16-bit mono WAV."""
    with wave.open(str(path)) as w:
        assert (w.getsampwidth(), w.getnchannels(), w.getframerate()) == (2, 1, 8000), path
        samples = array.array("h", w.readframes(w.getnframes()))
    return [sum(abs(s) for s in samples[i:i + FRAME]) / FRAME
            for i in range(0, len(samples) - FRAME + 1, FRAME)]


def _voiced(envelope: list[float]) -> list[float]:
    """The envelope from its first loud frame to its last."""
    loud = [i for i, v in enumerate(envelope) if v > LOUD]
    assert loud, "no voice at all"
    return envelope[loud[0]:loud[-1] + 1]


def _correlation(a: list[float], b: list[float]) -> float:
    """Pearson correlation of two envelopes over their common length."""
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    ma, mb = sum(a) / n, sum(b) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    var = math.sqrt(sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b))
    return cov / var if var else 0.0


def _best_correlation(heard: list[float], sound: list[float], frames: int = 10) -> float:
    """:func:`_correlation` at the best shift of up to ``frames`` (a quieter copy crosses
    :data:`LOUD` a frame or two later, so the voiced spans start a little apart)."""
    return max(_correlation(heard[max(lag, 0):], sound[max(-lag, 0):])
               for lag in range(-frames, frames + 1))


async def _reference(carrier: Carrier, installation, directory: Path) -> Path:  # type: ignore[no-untyped-def]
    """The message's sound file as 8 kHz WAV, converted by Asterisk itself (the core
    sounds are GSM): what the machine should have heard."""
    source = installation.sound_languages()["en"] / f"{MESSAGE}.gsm"
    target = directory / f"{MESSAGE}.wav"
    _, out = await asyncio.to_thread(carrier.instance.cli,
                                     f"file convert {source} {target}")
    assert target.is_file(), out
    return target


async def test_a_machine_gets_the_message_after_its_beep_and_the_contact_is_done(
        node: Node, asterisk_installation, tmp_path: Path) -> None:
    carrier = node.carrier
    assert carrier is not None
    async with start_dialer(node, config=_leaving(node.pbx.loaded.config)) as running, \
            node.pbx.agent_phone("carmen", auto_answer=False):
        dialer = running.dialer
        async with dialer.sessions.begin() as session:
            await CampaignRepository(session).import_contacts(
                "outbound", [NewContact(MACHINE, "UTC")])
        with node.carrier_ami.subscribe("Hangup") as carrier_hangups:
            await dialer.store.apply("carmen", Login(), utc_now(), reason="test")
            async with asyncio.timeout(90):
                await dialer.wait_until(lambda: len(dialer.ended) == 1)
            # The machine's channel on the carrier: its recording is complete once it hung up.
            ended = await carrier_hangups.wait_for("Hangup", 20, Context="carrier-in",
                                                   Exten=MACHINE)
        async with dialer.sessions() as session:
            (attempt,) = await session.scalars(select(ContactAttempt))
            (contact,) = await session.scalars(select(Contact))
        assert attempt.outcome is AttemptOutcome.MACHINE, attempt
        assert attempt.reason is not None and attempt.reason.endswith(
            f"machine: message {MESSAGE} left after the beep"), attempt.reason
        assert attempt.agent is None and attempt.answered_at is None
        assert contact.state is ContactState.DONE and contact.attempts == 1
        async with asyncio.timeout(10):  # carmen, held for the call, is free again
            while (await dialer.store.get("carmen", utc_now())).status \
                    is not AgentStatus.AVAILABLE:
                await running.passes(1)

    recordings = [p for p in carrier.machine_recordings(MACHINE)
                  if p.stem.endswith(f"-{ended['Uniqueid']}")]
    # None: the machine hung up before its beep (the message played over its greeting).
    assert len(recordings) == 1, f"the machine recorded nothing after its beep: {recordings}"
    recording = recordings[0]
    reference = _voiced(_envelope(await _reference(carrier, asterisk_installation, tmp_path)))
    heard = _envelope(recording)
    message = _voiced(heard)
    # The machine records from its beep on: silence first, while the dialer waited for
    # the beep to be over (WaitForSilence, 1.5 s), then the message.
    lead = heard.index(message[0]) * FRAME / 8000
    assert lead >= 1.0, lead
    # The whole message, no more: as long as the sound's voice (20 ms frames), so it
    # began after the beep and was not cut short.
    assert abs(len(message) - len(reference)) <= 15, (len(message), len(reference))
    # ... and it is that sound: the same words and pauses (the loudness envelope, frame
    # by frame), at a comparable level (GSM to mu-law on the trunk and back: measured
    # about half the file's mean amplitude).
    assert _best_correlation(message, reference) > 0.85, _best_correlation(message, reference)
    ratio = (sum(message) / len(message)) / (sum(reference) / len(reference))
    assert 0.25 < ratio < 2.0, ratio
    # Nothing else was played to the machine: no voice outside the message.
    assert sum(1 for v in heard if v > LOUD) <= len(message)
