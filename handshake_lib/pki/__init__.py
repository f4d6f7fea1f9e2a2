"""The course's certificate authority, and our certificate validator (lesson 04).

``CoursePKI`` issues the certificates live lessons use; :func:`handshake_lib.pki.validate.validate`
checks a chain the way a TLS client does and returns a report with one entry per check (its module
docstring says how).  The validator is imported from its module, never re-exported here, so that
``handshake_lib.pki.validate`` stays the module.
"""

from .builder import CoursePKI, IssuedCertificate

__all__ = ["CoursePKI", "IssuedCertificate"]
