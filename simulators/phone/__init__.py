"""The phone PassKey app, simulated: a key store file, enrolment with
networks, and scanning login QR codes (text or image). `passkey-phone --help`."""

from simulators.phone.app import PhoneApp

__all__ = ["PhoneApp"]
