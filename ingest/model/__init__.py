"""The model: records and errors, the floor every other part stands on."""
