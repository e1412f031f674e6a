VALUE = "helper from src"
