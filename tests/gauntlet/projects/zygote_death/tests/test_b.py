def test_b1(kill_zygote):
    pass


def test_b2(kill_zygote):
    pass


def test_b3():
    pass
