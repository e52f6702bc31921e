"""Offline Authsignal emulator for the dev stack.

Plays the parts of Authsignal the app touches: the server API the ``authsignal``
Python SDK calls (``/v1``), the pre-built UI for email OTP speaking the Web SDK's
popup protocol, a dev mailbox, and the pinned Web SDK file. Never deployed.
"""
