def label(number, currency):
    return f"#{number} {currency}"
