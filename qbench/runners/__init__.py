"""Execution back-ends behind one interface (see base.Runner)."""
