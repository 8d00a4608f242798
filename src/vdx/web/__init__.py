"""Web pages served by the app itself: the citizen's join page, the staff booking pages and the
operator dashboard. Plain HTML/CSS/JS under ``static/`` (no build step), talking to the same
public APIs an integration uses (signalling WebSocket, VDX API v2, conference control)."""
