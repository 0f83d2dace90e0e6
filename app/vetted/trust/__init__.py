"""Signatures, pinned identities and trusted roots.

Every check here is made against an identity someone chose (DESIGN.md invariant 2):
there is deliberately no "any valid signature" mode.
"""
