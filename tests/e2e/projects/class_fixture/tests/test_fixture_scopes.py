def test_outside_a_class(per_class):
    assert per_class == 1


def test_again_outside_a_class(per_class):
    assert per_class == 1


class TestInside:
    def test_one(self, per_class):
        assert per_class == 1

    def test_two(self, per_class):
        assert per_class == 1
