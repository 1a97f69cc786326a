"""The Franka Panda tasks: kinematics, the PD controller, resets, success rules, determinism, config checks."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import envs
from app.config import load_config
from app.errors import ConfigError
from envs.deploy import controller_class
from envs.manipulation import kinematics, scene
from envs.manipulation.config import FrankaConfig
from envs.manipulation.deploy import FrankaController
from envs.manipulation.episodes import GOAL_X, GOAL_Y
from envs.manipulation.rules import (
    HOVER_SLOPE,
    LIFT_HOLD_STEPS,
    PUSH_BEHIND,
    PUSH_HOVER,
    RULES,
    approach_point,
    behind_cube,
)
from envs.manipulation.task import FrankaLift, FrankaPush, FrankaReach
from envs.native.vecenv import NativeVecEnv
from tests.envs.test_layers import imported_after


def arm(cls: type = FrankaReach, n: int = 2, cfg: FrankaConfig | None = None, **kwargs) -> NativeVecEnv:
    return NativeVecEnv(cls, n, nthread=1, options=cfg, **{"dtype": torch.float64, **kwargs})


def start_at(env: NativeVecEnv, q: np.ndarray) -> None:
    """Every arm at joint positions q [7] (fingers as the task keeps them), at rest, targets = q."""
    task = env.task
    qpos = env.sim.qpos.clone()
    qpos[:, task.arm_qpos] = torch.as_tensor(q, dtype=torch.float64)
    env.set_initial_state(torch.arange(env.num_envs), qpos, torch.zeros(env.num_envs, env.sim.model.nv))
    task._per_world["target_q"][:] = torch.as_tensor(q, dtype=torch.float64)


# -- the arm ------------------------------------------------------------------------------------


def test_the_hand_follows_frankas_published_kinematics_within_half_a_millimetre():
    """The model's grip site against the datasheet's DH kinematics, which deploy-sim's controller uses."""
    env = arm(n=1)
    rng = np.random.default_rng(0)
    low, high = env.task.q_low.numpy(), env.task.q_high.numpy()
    for q in [np.array(scene.HOME), np.array(scene.PREGRASP), *rng.uniform(low, high, (20, 7))]:
        start_at(env, q)
        position, axis = kinematics.hand_pose(q)
        data = env.sim.data_of(0)
        approach = data.site_xmat[env.task.ee_site].reshape(3, 3)[:, 2]
        assert np.abs(env.task.hand(env.sim)[0].numpy() - position).max() < 5e-4, q
        assert np.dot(approach, axis) > math.cos(0.01), q


@pytest.mark.parametrize(("pose", "hand"), [(scene.HOME, [0.5, 0.0, 0.27]), (scene.PREGRASP, [0.525, 0.0, 0.12])])
def test_the_start_poses_hold_the_hand_above_the_table_pointing_down_fingers_across_y(pose, hand):
    env = arm(n=1)
    start_at(env, np.array(pose))
    assert np.allclose(env.task.hand(env.sim)[0].numpy(), hand, atol=1e-3)
    data = env.sim.data_of(0)
    approach = data.site_xmat[env.task.ee_site].reshape(3, 3)[:, 2]
    finger_axis = data.xaxis[env.sim.model.joint(scene.FINGER_JOINTS[0]).id]
    assert approach[2] < -0.999 and abs(finger_axis[1]) > 0.999


def test_the_pd_controller_holds_a_pose_against_gravity_and_tracks_a_target_within_its_torque_limits():
    cfg = FrankaConfig()
    env = arm(n=2, cfg=cfg, time_limit=False)
    pose = np.array([0.4, 0.3, -0.2, -1.8, 0.3, 1.2, 0.2])  # arm stretched out: large gravity torques
    start_at(env, pose)
    for _ in range(100):  # 2 s of zero actions
        env.step(torch.zeros(2, 7))
    q = env.sim.qpos[:, env.task.arm_qpos].numpy()
    assert np.abs(q - pose).max() < 1e-3
    step = torch.zeros(2, 7)
    step[:, 0] = 1.0  # joint 1's target moves 0.05 rad per step for 10 steps
    for _ in range(10):
        env.step(step)
    torque_limit = np.array(cfg.torque_limit)
    for _ in range(50):
        env.step(torch.zeros(2, 7))
        force = env.sim.data_of(0).actuator_force[env.task.arm_act]
        assert (np.abs(force) <= torque_limit + 1e-9).all()
    q = env.sim.qpos[:, env.task.arm_qpos].numpy()
    assert abs(q[0, 0] - (pose[0] + 10 * cfg.action_scale)) < 5e-3
    assert np.abs(q[0, 1:] - pose[1:]).max() < 5e-3


def test_joint_targets_are_clipped_to_the_joint_limits():
    env = arm(n=1, time_limit=False)
    for _ in range(80):
        env.step(torch.full((1, 7), 1.0))
    target = env.task._per_world["target_q"][0]
    assert torch.allclose(target, env.task.q_high)


def test_the_scene_uses_the_installed_package_and_the_configs_gains():
    cfg = FrankaConfig(
        stiffness=(800.0, 800.0, 800.0, 800.0, 100.0, 100.0, 100.0), torque_limit=(80.0,) * 4 + (10.0,) * 3
    )
    model = scene.scene_model(cfg)
    act = model.actuator(scene.ARM_ACTUATORS[0])
    assert act.gainprm[0] == 800.0 and act.biasprm[1] == -800.0 and tuple(act.forcerange) == (-80.0, 80.0)
    assert model.joint(scene.JOINT_NAMES[4]).damping[0] == cfg.damping[4]
    assert "gymnasium_robotics" in str(scene.franka_assets())


# -- resets -------------------------------------------------------------------------------------


def test_resets_place_arm_and_cube_where_the_config_says_without_penetration():
    cfg = FrankaConfig(cube_size=(0.04, 0.06), cube_low=(0.45, -0.05), cube_high=(0.55, 0.1), init_joint_noise=0.2)
    env = arm(FrankaPush, n=32, cfg=cfg)
    env.reset(seed=1)
    task = env.task
    cube = task.cube(env.sim).numpy()
    size = task._per_world["cube_size"].numpy()
    assert (size >= 0.04).all() and (size <= 0.06).all() and size.std() > 0
    assert (cube[:, 0] >= 0.45).all() and (cube[:, 0] <= 0.55).all()
    assert (cube[:, 1] >= -0.05).all() and (cube[:, 1] <= 0.1).all()
    assert np.allclose(cube[:, 2], size / 2)
    q = env.sim.qpos[:, task.arm_qpos].numpy()
    assert (np.abs(q - np.array(scene.PREGRASP)) <= 0.2 + 1e-12).all()
    assert (q >= task.q_low.numpy()).all() and (q <= task.q_high.numpy()).all()
    goal = task._per_world["goal"].numpy()
    assert np.allclose(goal[:, 2], size / 2)
    for i in range(env.num_envs):
        model, data = env.sim.model_of(i), env.sim.data_of(i)
        assert np.allclose(model.geom_size[task.cube_geom], size[i] / 2)
        assert all(data.contact[k].dist > -1e-4 for k in range(data.ncon)), i


def test_the_cube_has_the_configs_mass_and_friction():
    default = scene.scene_model()
    assert default.body("cube").mass[0] == 0.1 and default.geom("cube").friction[0] == 1.0
    model = scene.scene_model(FrankaConfig(cube_mass=0.3, cube_friction=(0.6, 0.6)))
    assert math.isclose(model.body("cube").mass[0], 0.3) and math.isclose(model.geom("cube").friction[0], 0.6)
    # the inertia follows the mass: a solid 5 cm box, m a^2 / 6
    assert np.allclose(model.body("cube").inertia, 0.3 * 0.05**2 / 6)
    env = arm(FrankaLift, n=2, cfg=FrankaConfig(cube_mass=0.3))
    assert math.isclose(env.sim.model.body("cube").mass[0], 0.3)


@pytest.mark.parametrize("cls", [FrankaPush, FrankaLift])
def test_a_friction_range_is_drawn_per_episode_for_the_cube_alone(cls):
    env = arm(cls, n=32, cfg=FrankaConfig(cube_friction=(0.5, 1.5)))
    env.reset(seed=3)
    friction = env.sim.model_field("geom_friction")
    cube = friction[:, env.task.cube_geom, 0].clone()
    assert (cube >= 0.5).all() and (cube <= 1.5).all() and cube.std() > 0.2  # U(0.5, 1.5): std 0.29
    others = [g for g in range(env.sim.model.ngeom) if g != env.task.cube_geom]
    assert torch.equal(friction[:, others], torch.as_tensor(env.sim.model.geom_friction[others]).expand(32, -1, -1))
    for i in (0, 7):  # the world's own model (rendering, deploy-sim) has its draw
        assert math.isclose(env.sim.model_of(i).geom_friction[env.task.cube_geom, 0], float(cube[i]))
    env.task.reset_worlds(torch.tensor([0, 1]), env.generator)  # a new episode in worlds 0 and 1 only
    after = friction[:, env.task.cube_geom, 0]
    assert not torch.equal(after[:2], cube[:2]) and torch.equal(after[2:], cube[2:])


def test_the_controller_draws_the_tasks_cube_friction_for_the_same_episode():
    cfg = FrankaConfig(cube_friction=(0.3, 1.5))
    env = arm(FrankaPush, n=1, cfg=cfg)
    obs = env.reset(seed=4)
    controller = FrankaController(RULES[FrankaPush.gym_id], cfg, env.task.weights, 200, draws=torch_draws(4))
    cube_geom = controller.model.geom("cube").id
    drawn = float(env.sim.model_field("geom_friction")[0, env.task.cube_geom, 0])
    assert 0.3 <= drawn <= 1.5 and drawn != 1.0
    assert math.isclose(controller.model.geom_friction[cube_geom, 0], drawn, rel_tol=1e-12)
    g = np.random.default_rng(0)
    for step in range(40):
        assert np.abs(controller.reference_observation() - obs[0].numpy()).max() < 1e-9, step
        action = g.uniform(-1, 1, env.task.act_dim)
        controller.step(action)
        obs, *_ = env.step(torch.as_tensor(action)[None])


@pytest.mark.parametrize("cls", [FrankaReach, FrankaPush, FrankaLift])
def test_the_controller_draws_episodes_from_the_tasks_ranges_without_penetration(cls):
    """deploy-sim's episodes: goals where the task puts them, the cube resized in the model, start poses
    redrawn when they touch something."""
    cfg = FrankaConfig(cube_size=(0.04, 0.06), cube_low=(0.45, -0.05), cube_high=(0.55, 0.1), init_joint_noise=0.4)
    controller = FrankaController(RULES[cls.gym_id], cfg, {}, cls.max_episode_steps, seed=0)
    model, data = controller.model, controller.data
    home = np.array(cls.rules.start_pose)
    sizes = []
    for episode in range(30):
        controller.reset(episode)
        q, goal = data.qpos[controller.arm_qpos], controller.goal
        assert all(data.contact[k].dist > -1e-4 for k in range(data.ncon)), episode
        assert (np.abs(q - home) <= 0.4 + 1e-12).all() and np.array_equal(controller.target_q, q)
        assert (q >= controller.joints.low).all() and (q <= controller.joints.high).all()
        if cls is FrankaReach:
            assert (goal >= np.array(cfg.target_low)).all() and (goal <= np.array(cfg.target_high)).all()
            continue
        size, cube = float(controller.cube_size), data.qpos[controller.cube_qpos : controller.cube_qpos + 3]
        sizes.append(size)
        assert np.allclose(model.geom_size[model.geom("cube").id], size / 2)
        assert math.isclose(cube[2], size / 2, abs_tol=1e-12)
        assert (cube[:2] >= np.array(cfg.cube_low)).all() and (cube[:2] <= np.array(cfg.cube_high)).all()
        if cls is FrankaPush:  # on the table's part GOAL_X x GOAL_Y, at most goal_distance from the cube
            assert GOAL_X[0] <= goal[0] <= GOAL_X[1] and GOAL_Y[0] <= goal[1] <= GOAL_Y[1]
            assert np.linalg.norm(goal[:2] - cube[:2]) <= cfg.goal_distance[1] + 1e-12 and goal[2] == size / 2
        else:  # above the cube, lift_height above its resting height
            assert np.array_equal(goal[:2], cube[:2])
            assert cfg.lift_height[0] <= goal[2] - size / 2 <= cfg.lift_height[1]
    assert not sizes or 0.04 <= min(sizes) < max(sizes) <= 0.06


def test_the_same_seed_gives_the_same_episode():
    def run(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        env = arm(FrankaLift, n=3)
        first = env.reset(seed=seed)
        g = torch.Generator().manual_seed(0)
        rewards = [env.step(torch.rand(3, 8, generator=g) * 2 - 1)[1] for _ in range(20)]
        return first, torch.stack(rewards)

    (a_obs, a_rew), (b_obs, b_rew), (c_obs, _) = run(5), run(5), run(6)
    assert torch.equal(a_obs, b_obs) and torch.equal(a_rew, b_rew)
    assert not torch.equal(a_obs, c_obs)


# -- success ------------------------------------------------------------------------------------


def test_reach_succeeds_within_2_cm():
    env = arm(n=2)
    start_at(env, np.array(scene.HOME))
    hand = env.task.hand(env.sim)
    env.task._per_world["goal"][:] = hand + torch.tensor([[0.015, 0.0, 0.0], [0.0, 0.025, 0.0]], dtype=torch.float64)
    env.step(torch.zeros(2, 7))
    assert env.task.last_terms["success"].tolist() == [1.0, 0.0]
    assert env.task.episode_stats()["success"].tolist() == [1.0, 0.0]


def test_push_succeeds_with_the_cube_within_3_cm_of_the_goal():
    env = arm(FrankaPush, n=2)
    env.reset(seed=0)
    cube = env.task.cube(env.sim)
    goal = cube.clone()
    goal[0, 0] += 0.02
    goal[1, 1] += 0.04
    env.task._per_world["goal"][:] = goal
    env.step(torch.zeros(2, 7))
    assert env.task.last_terms["success"].tolist() == [1.0, 0.0]


def test_push_draws_the_hand_down_onto_the_pushing_point_from_above():
    """Cube at (0.5, 0), goal 15 cm along +x: the pushing point is 2.5 + 2 cm behind the cube's centre; the
    hand is drawn PUSH_HOVER above it while away from it, HOVER_SLOPE m lower per m closer (in the plane)."""
    assert (PUSH_BEHIND, PUSH_HOVER, HOVER_SLOPE) == (0.02, 0.05, 2.0)  # the values the case is computed for
    cube, goal, size = np.array([0.5, 0.0, 0.025]), np.array([0.65, 0.0, 0.025]), np.array(0.05)
    np.testing.assert_allclose(behind_cube(cube, goal, size), [0.455, 0.0, 0.025])
    hands = np.array([[0.3, 0.0, 0.2], [0.46, 0.0, 0.1], [0.455, 0.0, 0.3], [0.455, 0.03, 0.0]])
    # horizontal distances 0.155, 0.005, 0, 0.03: lifts min(0.05, 2 d) = 0.05, 0.01, 0, 0.05
    expected = [[0.455, 0.0, 0.075], [0.455, 0.0, 0.035], [0.455, 0.0, 0.025], [0.455, 0.0, 0.075]]
    many = (np.broadcast_to(cube, (4, 3)), np.broadcast_to(goal, (4, 3)), np.full(4, 0.05))
    np.testing.assert_allclose(approach_point(hands, *many), expected, atol=1e-12)
    as_torch = [torch.as_tensor(np.ascontiguousarray(x)) for x in (hands, *many)]
    np.testing.assert_allclose(approach_point(*as_torch, xp=torch).numpy(), expected, atol=1e-12)
    # the goal in another direction turns the pushing point with it: goal along +y puts it at y = -0.045
    np.testing.assert_allclose(behind_cube(cube, np.array([0.5, 0.2, 0.025]), size), [0.5, -0.045, 0.025])


def test_push_observes_the_pushing_point_and_is_rewarded_for_its_approach():
    env = arm(FrankaPush, n=2)
    obs = env.reset(seed=3)
    task = env.task
    names = task.observation_names()[0]
    assert len(names) == obs.shape[1]
    s = task.arm_state(env.sim)
    point = behind_cube(s.cube, s.goal, s.cube_size, torch)
    at = names.index("push_point_x - hand_x")
    assert names[at : at + 3] == [f"push_point_{a} - hand_{a}" for a in "xyz"]
    torch.testing.assert_close(obs[:, at : at + 3], (point - s.hand).to(obs.dtype))
    env.step(torch.zeros(2, 7))
    s = task.arm_state(env.sim)
    reach = -torch.linalg.norm(s.hand - approach_point(s.hand, s.cube, s.goal, s.cube_size, torch), dim=-1)
    torch.testing.assert_close(task.last_terms["reach"], reach)


def test_lift_succeeds_only_after_a_second_above_5_cm():
    env = arm(FrankaLift, n=2)
    env.reset(seed=0)
    task = env.task
    qpos = env.sim.qpos.clone()
    a = task.cube_qpos
    size = task._per_world["cube_size"]
    qpos[:, a + 2] = size / 2 + torch.tensor([0.06, 0.04], dtype=torch.float64)  # above / below the bar
    fake = SimpleNamespace(qpos=qpos, qvel=env.sim.qvel.clone(), site_xpos=env.sim.site_xpos.clone(), num_worlds=2)
    before = task.pre_step(fake)
    for _ in range(LIFT_HOLD_STEPS - 1):
        task.reward(fake, before, torch.zeros(2, 8))
    assert task.success().tolist() == [False, False]
    task.reward(fake, before, torch.zeros(2, 8))
    assert task.success().tolist() == [True, False]
    qpos[0, a + 2] = size[0] / 2  # dropped: the count starts again
    task.reward(fake, before, torch.zeros(2, 8))
    assert task.success().tolist() == [False, False]


# -- clients and configs ---------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", ["policylab/FrankaReach-v0", "policylab/FrankaPush-v0", "policylab/FrankaLift-v0"])
def test_gymnasiums_environment_checker_passes(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    frame = env.unwrapped.vec.render(width=96, height=72, camera="front")
    assert frame.shape == (72, 96, 3) and frame.std() > 0


def torch_draws(seed: int):
    """Episode -> a U(0, 1) sampler over the torch stream a VecEnv reset with ``seed`` draws from."""

    def draws(episode: int):
        generator = torch.Generator().manual_seed(seed)
        return lambda shape: torch.rand(shape, generator=generator, dtype=torch.float64).numpy()

    return draws


# seeds whose first start pose (init_joint_noise 0.8) touches the table or the cube: redrawn once or twice
@pytest.mark.parametrize(("cls", "seed"), [(FrankaReach, 2), (FrankaPush, 10), (FrankaLift, 5)])
def test_the_controller_runs_the_tasks_episode_step_for_step(cls, seed, monkeypatch):
    """deploy-sim's controller (numpy over its own MjData) against the batched task, one whole episode.

    Both draw from the same U(0, 1) stream, so they start the same episode (a start pose redrawn after
    touching the table included); then the same actions give the same observations, rewards, end and
    statistics, to 1e-9.
    """
    checks = []
    penetrating = scene.penetrating
    monkeypatch.setattr(scene, "penetrating", lambda *a: checks.append(1) or penetrating(*a))
    cfg = FrankaConfig(cube_size=(0.04, 0.06), init_joint_noise=0.8)
    env = arm(cls, n=1, cfg=cfg)
    checks.clear()
    obs = env.reset(seed=seed)
    assert len(checks) > 1, "the start pose was not redrawn: choose a seed whose first draw touches the table"
    checks.clear()
    controller = FrankaController(
        RULES[cls.gym_id], cfg, env.task.weights, cls.max_episode_steps, draws=torch_draws(seed)
    )
    assert len(checks) > 1
    g = np.random.default_rng(0)
    for step in range(cls.max_episode_steps):
        assert np.abs(controller.reference_observation() - obs[0].numpy()).max() < 1e-9, step
        gap = np.abs(controller.observation() - controller.reference_observation()).max()
        assert gap < controller.obs_tolerance, step
        action = g.uniform(-1.2, 1.2, env.task.act_dim)
        reward, done = controller.step(action)
        obs, env_reward, terminated, truncated, info = env.step(torch.as_tensor(action)[None])
        assert math.isclose(reward, float(env_reward[0]), rel_tol=1e-9, abs_tol=1e-9), step
        assert done == bool(terminated[0] or truncated[0]), step
        if done:
            break
    stats = info["episode_stats"]
    assert controller.episode_stats()["success"] == float(stats["success"][0])
    assert math.isclose(controller.episode_stats()["final_distance"], float(stats["final_distance"][0]), abs_tol=1e-9)


def test_the_controller_is_built_from_policy_json_alone_and_reports_the_success_rate():
    env = arm(FrankaPush, n=1, cfg=FrankaConfig(reward_action_rate=0.05))
    section = env.task.deployment()
    meta = json.loads(json.dumps({"observation": {"franka": section}, "max_episode_steps": 200}))
    cls = controller_class(section["controller"])
    assert cls is FrankaController
    controller = cls.from_export(meta, seed=4)
    assert controller.rules is RULES[FrankaPush.gym_id] and controller.cfg == env.task.cfg
    assert controller.weights == env.task.weights and controller.max_episode_steps == 200
    again = cls.from_export(meta, seed=4)
    assert np.array_equal(controller.goal, again.goal)  # episode i is drawn from seed + i
    controller.reset(1)
    assert not np.array_equal(controller.goal, again.goal)
    assert controller.observation().shape == (len(section["entries"]),)
    summary = controller.summarize([{"success": 1.0, "final_distance": 0.01}, {"success": 0.0, "final_distance": 0.1}])
    assert summary == pytest.approx({"success": 0.5, "final_distance": 0.055})
    (line,) = controller.summary_lines(summary, {"success": 0.9})
    assert line == (
        "PD joint targets at 0.02 s, numpy controller: success rate 50% (final distance to the goal 5.5 cm on "
        "average); checkpoint evaluation: 90%"
    )


def test_the_controller_imports_neither_torch_nor_app():
    loaded = imported_after("import envs.manipulation.deploy")
    assert not loaded & {"torch", "app", "policies"}


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("task.franka.target_high=[0.9,0.3,0.6]", "target_high"),
        ("task.franka.target_low=[0.35,-0.25,0.0]", "target_low"),
        ("task.franka.cube_size=[0.05,0.09]", "cube_size"),
        ("task.franka.stiffness=[870,870,870,870,120,120,0]", "stiffness"),
        ("task.franka.damping=[100,100,100,100,10,10]", "damping"),
        ("task.franka.torque_limit=[87,87,87,-87,12,12,12]", "torque_limit"),
        ("task.franka.action_scale=0", "action_scale"),
        ("task.franka.cube_high=[1.2,0.1]", "cube_high"),
        ("task.franka.reward_grip=1", "reward_grip"),
    ],
)
def test_impossible_franka_configs_are_refused_with_the_key(override, key):
    with pytest.raises(ConfigError, match=key) as info:
        load_config("franka_push", [override])
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["franka_reach", "franka_push", "franka_lift"])
def test_the_shipped_configs_build_their_tasks(name):
    cfg = load_config(name, ["task.num_envs=2"])
    env = envs.make(cfg.task)
    obs = env.reset(seed=0)
    assert obs.shape[0] == 2 and torch.isfinite(obs).all()
    env.close()


def test_the_gpu_backend_moves_the_same_arm_and_cube():
    """MuJoCo Warp (on Warp's CPU device here, CUDA on a GPU machine) against mujoco.batch, same seed."""
    import os

    from envs.native.simulator import make_simulator

    device = os.environ.get("POLICYLAB_WARP_DEVICE", "cpu")
    warp = NativeVecEnv(FrankaLift, 4, simulator=make_simulator("gpu", FrankaLift, 4, device=device))
    cpu = arm(FrankaLift, n=4, dtype=torch.float32)
    a, b = warp.reset(seed=1), cpu.reset(seed=1)
    assert torch.allclose(a.cpu(), b, atol=1e-4)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        action = torch.rand(4, 8, generator=g) * 2 - 1
        (a, ra, *_), (b, rb, *_) = warp.step(action.to(warp.device)), cpu.step(action)
    assert torch.allclose(a.cpu(), b, atol=1e-3)  # float32 and Warp's own solver: slow drift only
    assert torch.allclose(ra.cpu(), rb, atol=1e-3)


def test_the_shared_randomization_reaches_the_cube_and_the_arm():
    """Cube mass and friction (mass_scale, friction_scale), action latency and observation noise."""
    from envs.config import RandomizationConfig

    rand = RandomizationConfig(
        mass_scale=(0.5, 2.0), friction_scale=(0.5, 1.5), latency_steps=(1, 1), obs_noise_std=0.01
    )
    env = arm(FrankaPush, n=8, randomization=rand)
    env.reset(seed=0)
    cube_body = env.sim.model.body("cube").id
    mass = env.sim.model_field("body_mass")[:, cube_body]
    assert mass.std() > 0 and (mass >= 0.05 - 1e-12).all() and (mass <= 0.2 + 1e-12).all()
    friction = env.sim.model_field("geom_friction")[:, env.task.cube_geom, 0]
    assert friction.std() > 0
    start = env.task._per_world["target_q"].clone()
    env.step(torch.ones(8, 7))  # latency 1: this step applies the zero action from before the episode
    assert torch.allclose(env.task._per_world["target_q"], start)
    env.step(torch.zeros(8, 7))
    assert not torch.allclose(env.task._per_world["target_q"], start)


def test_a_lift_run_resumed_from_its_checkpoint_is_identical_to_an_uninterrupted_one(tmp_path):
    """Joint and gripper targets, goals, cube sizes (per-world geometry) and hold counters are in the checkpoint."""
    from tests.test_training import assert_resume_is_exact

    small = [
        "task.num_envs=4",
        "task.num_threads=1",
        "task.franka.cube_size=[0.04,0.06]",
        "train.steps_per_env=64",
        "train.eval_every=2",  # both runs evaluate where the half run stops
        "train.eval_episodes=1",
        "train.progress=none",
        "algo.minibatch_size=64",
        "algo.lr_schedule=constant",
    ]
    assert_resume_is_exact(tmp_path, "franka_lift", small, steps=1024, iterations=4)
