"""The Franka Panda tasks' scene and configuration (numpy and mujoco only; the tasks are in envs.native.franka)."""
