"""SMS one-time codes: the phone number is entered at enrolment, in E.164 form.

Text messages go to the dev mailbox (`?phone=`), never to a real phone.
"""

from __future__ import annotations

import re

SMS = "SMS"
SUBJECT = "Your sign-in code (text message)"
E164 = re.compile(r"\+[1-9][0-9]{6,14}")


class PhoneError(ValueError):
    code = "invalid_phone_number"


def normalize_phone(text: object) -> str:
    """'+1 (555) 010-2030' → '+15550102030'; anything else that is not E.164 is refused."""
    phone = re.sub(r"[\s().-]", "", text) if isinstance(text, str) else ""
    if not E164.fullmatch(phone):
        raise PhoneError("Enter the phone number in international format, starting with + and the country code, like +15550102030.")
    return phone


def mask_phone(phone: str) -> str:
    return f"{phone[:3]}\u2022\u2022\u2022\u2022{phone[-2:]}"
