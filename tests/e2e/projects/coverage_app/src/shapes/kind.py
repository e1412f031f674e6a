def classify(sides):
    kinds = []
    for count in sides:
        if count == 3:
            kinds.append("triangle")
        elif count == 4:
            kinds.append("quad")
        elif count > 4:
            kinds.append("polygon")
        else:
            kinds.append("degenerate")
    return kinds


def only_in_a_subprocess(value):
    if value:
        return "subprocess"
    return "never"
