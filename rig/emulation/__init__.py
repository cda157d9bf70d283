"""The rig's emulation of one AWS region, one module per emulated service; see
rig/README.md. Importing `emulation.region` patches moto's backends."""
