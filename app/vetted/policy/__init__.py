"""An organisation's managed policy: machine-wide, tighten-only, fail-closed.

schema.py     the `vetted.policy/1` document, validated strictly
sources.py    the fixed machine-wide locations per OS, and who may write them
effective.py  the policy in force (tighten-only merge), each rule with its source

The rules are enforced in one place, the application object (core/app.py), for every
front end alike.
"""
