"""Accounts: roles, API tokens and their queue scopes, token authentication and throttling.

The bottom layer: every other app may import from here, and this app imports none of them.
"""
