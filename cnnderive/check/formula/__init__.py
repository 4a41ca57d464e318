"""Reading user formulas (plain maths or LaTeX) safely, without eval."""
