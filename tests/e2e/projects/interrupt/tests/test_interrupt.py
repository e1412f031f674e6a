def test_raises_keyboard_interrupt(session_resource, module_resource, function_resource):
    raise KeyboardInterrupt
