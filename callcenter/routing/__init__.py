"""Pure routing decisions (which agent for which call, now), for the inbound ACD.

Empty until the queue router lands; it imports no I/O library.
"""
