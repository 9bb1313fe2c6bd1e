"""Dear PyGui views. Each builds its items once and then only renders the controller's state
(``render(state, prev)`` skips work when its part of the state is the same object) and forwards clicks as
messages through ``dispatch``. No view performs I/O.
"""
