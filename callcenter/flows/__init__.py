"""Pure logic of call flows shared by the FastAGI scripts and the simulator."""
