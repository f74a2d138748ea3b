"""The HTTP face of a service: the app and its routes, the guard (keys, rate, host), the
request and response models, and `mnemo serve`."""
