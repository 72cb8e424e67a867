"""AMI (Asterisk Manager Interface): a small asyncio client with byte-level framing."""

from callcenter.asterisk.ami.client import (
    AMIActionError,
    AMIAuthenticationError,
    AMIClient,
    AMIConnectionError,
    AMIError,
    AMIMessage,
    AMIResponse,
    AMISubscription,
    AMITimeoutError,
    parse_message,
)

__all__ = [
    "AMIActionError",
    "AMIAuthenticationError",
    "AMIClient",
    "AMIConnectionError",
    "AMIError",
    "AMIMessage",
    "AMIResponse",
    "AMISubscription",
    "AMITimeoutError",
    "parse_message",
]
