app = __import__("typer").Typer()
