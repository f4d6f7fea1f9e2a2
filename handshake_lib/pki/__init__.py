"""The course's certificate authority, and our certificate validator (lesson 04).

``CoursePKI`` issues the certificates live lessons use; :func:`validate` checks a chain the way a TLS
client does and returns a :class:`ValidationReport` with one entry per check (see ``validate.py``).
"""

from .builder import CoursePKI, IssuedCertificate
from .validate import Check, Purpose, RevocationPolicy, Status, ValidationReport, validate

__all__ = [
    "CoursePKI",
    "IssuedCertificate",
    "Check",
    "Purpose",
    "RevocationPolicy",
    "Status",
    "ValidationReport",
    "validate",
]
