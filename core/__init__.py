"""What every layer shares: settings, the destination policy, queue names and vocabularies, secrets.

Imports none of app, workers or db.
"""
