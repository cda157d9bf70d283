"""The rig's emulation of one AWS region, one module per emulated service; see
rig/README.md. Importing a service module patches moto's backends with what that module
models; rig/moto_region.py imports them all."""
