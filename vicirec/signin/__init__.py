"""Staff sign-in fit for a system of record: lock-out after repeated failures (django-axes) and two-factor
sign-in with an authenticator app (TOTP, django-otp), required for superusers and Legal approvers.

An app of its own (it imports no other app of this project): the admin site, its sign-in form, the
authentication backend, the deploy check on the demo switch and the enrolment commands.
"""
