"""Forms, one module per area; every rule a user can break gets a message next to the field."""
