"""The request pipeline the API and the web pages share: the caller's admission (token, principal,
organisation, role gate), the request's database sessions, and errors written as HTTP answers.
Beneath ``api`` and ``web`` so neither reaches into the other; above ``services``, which it calls.
"""
