// The integration harnesses build on the plain helpers; one import gives a test both.
@_exported import TestSupport
