"""The Franka Panda tasks' home: the scene, the config, the rules (written once over numpy or torch), the
batched torch task (``task``) and deploy-sim's numpy controller (``deploy``).

Every module but ``task`` imports only numpy and mujoco, so deploy-sim runs the controller without torch.
"""
