"""Pure image maths that every layer above shares; nothing here imports the rest of the package."""
