"""`python -m gemini` runs the CLI."""

from gemini.cli import main

if __name__ == "__main__":
    main()
