"""Render ``trunks:`` into PJSIP sections and dialplan contexts (pure, like the generator).

Per trunk ``<name>`` (all named after it, as a generated softphone's sections are):

=========================  ====================================================
``[<name>]`` endpoint      calls to and from the provider; ``context`` is the inbound
                           context below; ``outbound_auth`` when it has ``auth``;
                           ``send_pai``: the caller ID travels in P-Asserted-Identity
                           even when ``from_user`` fixes the From header
``[<name>]`` aor           ``contact=sip:<host>:<port>``: where outbound calls go
``[<name>-auth]``          digest credentials, in ``pjsip_callcenter_auth.conf`` (0600)
``[<name>-reg]``           outbound registration (``registration: true``)
``[<name>-identify]``      the provider's INVITEs are known by its address (``host``)
``cc-trunk-<name>-out``    dial context: ``Local/<number>@cc-trunk-<name>-out``
                           places an outbound call through the trunk
``cc-trunk-<name>-in``     one extension per DID -> its entry point's context
=========================  ====================================================

Dial context contract: the number dialled is ``EXTEN`` (``+`` and digits only: anything
else hangs up with cause 28, invalid number format); the channel's
``CC_OUTBOUND_CALLER_ID`` (else the trunk's ``caller_id``) becomes the caller ID, its
``CC_RING_TIMEOUT`` (else ``ring_timeout``) the seconds to ring. After ``Dial()`` the
channel hangs up with the callee's ``HANGUPCAUSE`` (19 when Dial's ring timer ran out),
so whoever originated the Local channel sees busy (17), congestion (34, a 503), no answer
(19), normal clearing (16) after an answer, as the provider gave it.

Safety: host, user names, codecs and numbers were restricted by the models to alphabets
with no ``;`` ``,`` ``&`` ``$`` or blank; the password (from ``secrets.json``) is checked
here against :data:`TRUNK_PASSWORD` and never echoed in an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from callcenter.asterisk import variables as V
from callcenter.config.models import CallCenterConfig, Trunk

__all__ = [
    "TRUNK_PASSWORD",
    "MissingTrunkPasswordError",
    "auth_trunks",
    "trunk_auth_lines",
    "trunk_contexts",
    "trunk_in_context",
    "trunk_out_context",
    "trunk_pjsip_lines",
]

#: What a provider's password may hold to be written into PJSIP's config as it is: no
#: blank (trimmed), ``;`` (a comment), ``\\`` (an escape) or quote; 1 to 128 characters.
TRUNK_PASSWORD = re.compile(r"[A-Za-z0-9!#$%&()*+,./:<=>?@\[\]^_{|}~-]{1,128}")

#: ``(path) -> "file:line"`` for comments, as :data:`dialplan.generator.Locator`.
Where = Callable[..., str]
#: Free text on one harmless comment line (:func:`dialplan.generator._comment`).
Comment = Callable[[str], str]


class MissingTrunkPasswordError(ValueError):
    """A trunk with ``auth`` has no (usable) password in the home's secrets."""


def trunk_out_context(name: str) -> str:
    return f"cc-trunk-{name}-out"


def trunk_in_context(name: str) -> str:
    return f"cc-trunk-{name}-in"


def auth_trunks(config: CallCenterConfig) -> list[str]:
    """Names of the trunks that need a password from ``secrets.json``."""
    return sorted(name for name, trunk in config.trunks.items() if trunk.auth is not None)


def _uri(trunk: Trunk, user: str | None = None, domain: str | None = None) -> str:
    where = f"{domain or trunk.host}:{trunk.port}"
    suffix = ";transport=tcp" if trunk.transport == "tcp" else ""
    return f"sip:{user}@{where}{suffix}" if user else f"sip:{where}{suffix}"


def trunk_pjsip_lines(config: CallCenterConfig, where: Where, comment: Comment) -> list[str]:
    """Sections of ``pjsip_callcenter.conf`` for every trunk (auth sections excepted)."""
    lines: list[str] = []
    for name, t in sorted(config.trunks.items()):
        transport = f"transport-{t.transport}"
        lines += ["", f"; {comment(where('trunks', name))}: trunk to {t.host}:{t.port}"]
        if t.description:
            lines.append(f"; {comment(t.description)}")
        lines += [
            f"[{name}]",
            "type=endpoint",
            f"context={trunk_in_context(name)}",
            f"transport={transport}",
            "disallow=all",
            f"allow={','.join(t.codecs)}",
            "dtmf_mode=rfc4733",
            f"aors={name}",
            f"language={config.settings.language}",
            # Media stays through Asterisk (the dialer records and bridges it); the
            # provider's packets are answered where they come from.
            "direct_media=no",
            "rtp_symmetric=yes",
            "force_rport=yes",
            "rewrite_contact=yes",
            # The caller ID in P-Asserted-Identity too: with from_user set, the From
            # header carries the account, not the number.
            "send_pai=yes",
            "trust_id_outbound=yes",
        ]
        if t.auth is not None:
            lines.append(f"outbound_auth={name}-auth")
        if t.from_user:
            lines.append(f"from_user={t.from_user}")
        if t.from_domain:
            lines.append(f"from_domain={t.from_domain}")
        lines += ["", f"[{name}]", "type=aor", f"contact={_uri(t)}"]
        if t.registration and t.auth is not None:
            lines += [
                "",
                f"[{name}-reg]",
                "type=registration",
                f"transport={transport}",
                f"outbound_auth={name}-auth",
                f"server_uri={_uri(t)}",
                f"client_uri={_uri(t, t.auth.username, t.from_domain)}",
                f"contact_user={t.auth.username}",
                "expiration=300",
                # Keep trying: a provider down for an hour must not leave the trunk
                # unregistered until someone reloads.
                "retry_interval=30",
                "forbidden_retry_interval=300",
                "fatal_retry_interval=300",
                "auth_rejection_permanent=no",
                "max_retries=1000000",
            ]
        lines += ["", f"[{name}-identify]", "type=identify", f"endpoint={name}",
                  f"match={t.host}"]
    return lines


def trunk_auth_lines(config: CallCenterConfig, passwords: Mapping[str, str] | None) -> list[str]:
    """The trunks' digest credentials, for the 0600 auth file."""
    lines: list[str] = []
    for name in auth_trunks(config):
        trunk = config.trunks[name]
        assert trunk.auth is not None
        password = (passwords or {}).get(name)
        if password is None:
            raise MissingTrunkPasswordError(
                f"no password for trunk {name!r} in the home's secrets.json: store the one "
                f"your provider gave with 'callcenter trunks password {name}'")
        if not TRUNK_PASSWORD.fullmatch(password):
            raise MissingTrunkPasswordError(
                f"the password of trunk {name!r} is not 1 to 128 printable ASCII characters "
                "without blank, ';', '\\' or quotes (PJSIP's config could not hold it)")
        lines += ["", f"[{name}-auth]", "type=auth", "auth_type=userpass",
                  f"username={trunk.auth.username}", f"password={password}"]
    return lines


def trunk_contexts(config: CallCenterConfig, where: Where, comment: Comment,
                   entrypoint_context: Callable[[str], str]) -> str:
    """The dial and DID contexts of every trunk, as dialplan text."""
    out: list[str] = []
    number = "${FILTER(+0-9,${EXTEN})}"
    caller = f"${{FILTER(+0-9,${{{V.OUTBOUND_CALLER_ID}}})}}"
    ring = f"${{FILTER(0-9,${{{V.RING_TIMEOUT}}})}}"
    for name, t in sorted(config.trunks.items()):
        head = [f"; {comment(where('trunks', name))}"]
        out.append("\n".join([f"[{trunk_out_context(name)}]", *head,
                              (f"; Outbound calls through trunk {name}: "
                               f"Local/<number>@{trunk_out_context(name)}")]))
        ring_time = f'${{IF($["{ring}" = ""]?{t.ring_timeout}:{ring})}}'
        for pattern in ("_+X.", "_X."):
            apps = [
                f"NoOp(callcenter trunk {name} to {number})",
                # EXTEN may hold anything a pattern's '.' matched: only a clean
                # number is dialled, never a filtered-down different one.
                f'GotoIf($["{number}" != "${{EXTEN}}"]?bad,1)',
            ]
            if t.caller_id:
                apps.append(f"Set(CALLERID(num)={t.caller_id})")
            apps += [
                f'ExecIf($["{caller}" != ""]?Set(CALLERID(num)={caller}))',
                f"Dial(PJSIP/${{EXTEN}}@{name},{ring_time})",
                f"NoOp(callcenter trunk {name}: ${{DIALSTATUS}} cause ${{HANGUPCAUSE}})",
                # Dial's own timer ends an unanswered call with no cause at all (0):
                # the originator is told "no answer" (19) instead.
                'Hangup(${IF($["${DIALSTATUS}" = "NOANSWER"]?19:${HANGUPCAUSE})})',
            ]
            out.append(_exten(pattern, apps))
        out.append(_exten("bad", [f"NoOp(callcenter trunk {name}: not a number)",
                                  "Hangup(28)"]))
        out.append("\n".join([f"[{trunk_in_context(name)}]", *head,
                              f"; Calls from trunk {name} to its DIDs"]))
        for did, entry in sorted(t.dids.items()):
            out.append(_exten(did, [f"Goto({entrypoint_context(entry)},s,1)"]))
    return "\n".join(out) + ("\n" if out else "")


def _exten(name: str, apps: list[str]) -> str:
    lines = [f"exten => {name},1,{apps[0]}"] + [f" same => n,{app}" for app in apps[1:]]
    return "\n".join(lines) + "\n"
