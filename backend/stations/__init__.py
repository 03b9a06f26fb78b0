"""Liaison stations: the reception calendar (接待日) and who is on duty (值班代表)."""
