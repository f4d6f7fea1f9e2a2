"""The course's certificate authority and, later, a step-by-step certificate validator."""

from .builder import CoursePKI, IssuedCertificate

__all__ = ["CoursePKI", "IssuedCertificate"]
