from vdx.cli import app

app()
