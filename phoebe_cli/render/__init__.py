"""Rendering: data in, renderable or text out. The only package that builds Rich output; it
never prints (``console.Terminal`` does)."""
