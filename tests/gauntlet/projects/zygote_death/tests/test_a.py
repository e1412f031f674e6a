def test_a1():
    pass


def test_a2(kill_zygote):
    pass


def test_a3():
    pass
