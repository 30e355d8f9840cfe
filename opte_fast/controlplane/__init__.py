"""The control plane: desired state, the controller that commits it, the data plane wrapper, and
what feeds it (route sync, link state, exception taps), run by the daemon."""
