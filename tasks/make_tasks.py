#!/usr/bin/env python3
"""Generate the project's own small tasks under tasks/.

Every task gets a folder ``tasks/<name>/`` with ``task.yaml`` and three JSONL splits
(``train.jsonl``, ``dev.jsonl``, ``test.jsonl``). All content (word lists, sentences,
translations) is written out in this file; examples are produced by simple rules and split with
``random.Random`` seeded from ``SEED``, so running the script again rewrites byte-identical
files. Standard library only.

Usage::

    python tasks/make_tasks.py            # (re)write every task next to this file
    python tasks/make_tasks.py --out DIR  # write them somewhere else
"""

from __future__ import annotations

import argparse
import calendar
import json
import random
import re
from pathlib import Path

SEED = 7
"""Seed of every random choice in this file; each task starts its own ``random.Random(SEED)``."""

HERE = Path(__file__).resolve().parent

Row = dict  # {"input": str, "output": str, "alternatives": [str, ...]} (alternatives optional)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def row(inp: str, out: str, alternatives: list[str] | tuple[str, ...] = ()) -> Row:
    """Build one example; alternatives are kept only when they differ from the gold output."""
    r: Row = {"input": inp, "output": out}
    alts = [a for a in dict.fromkeys(alternatives) if a != out]
    if alts:
        r["alternatives"] = alts
    return r


def split_counts(items: list, rng: random.Random, n_train: int, n_dev: int) -> tuple[list, list, list]:
    """Shuffle a copy of ``items`` and cut it into train (n_train), dev (n_dev), test (the rest)."""
    items = list(items)
    rng.shuffle(items)
    return items[:n_train], items[n_train : n_train + n_dev], items[n_train + n_dev :]


def split_stratified(
    groups: list[list], rng: random.Random, train_frac: float, dev_frac: float
) -> tuple[list, list, list]:
    """Split every group with the same proportions, then shuffle each split.

    Keeps the mix of groups (e.g. regular/irregular verbs, one group per label) alike in all
    three splits.
    """
    train: list = []
    dev: list = []
    test: list = []
    for group in groups:
        g = list(group)
        rng.shuffle(g)
        n_train = round(len(g) * train_frac)
        n_dev = round(len(g) * dev_frac)
        train += g[:n_train]
        dev += g[n_train : n_train + n_dev]
        test += g[n_train + n_dev :]
    for part in (train, dev, test):
        rng.shuffle(part)
    return train, dev, test


def grow(
    splits: tuple[list, list, list], groups: list[list], rng: random.Random, dev_frac: float
) -> tuple[list, list, list]:
    """Add more examples to dev and test only: every example already placed stays in its split.

    Each group (e.g. one label) is shuffled and cut with the same dev fraction, the rest going to
    test, so the mix of groups is kept; then dev and test are shuffled again.
    """
    train, dev, test = (list(part) for part in splits)
    for group in groups:
        g = list(group)
        rng.shuffle(g)
        n_dev = round(len(g) * dev_frac)
        dev += g[:n_dev]
        test += g[n_dev:]
    rng.shuffle(dev)
    rng.shuffle(test)
    return train, dev, test


_PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_ ,.'()/?\-]*$")


def yaml_scalar(value: object) -> str:
    """A YAML scalar: plain when obviously safe, else a JSON string (valid YAML double-quoted)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    reserved = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}
    if _PLAIN.match(text) and text.lower() not in reserved and not text.rstrip(".").isdigit():
        return text
    return json.dumps(text, ensure_ascii=False)


def task_yaml(spec: dict) -> str:
    """Render a task.yaml with the keys in a fixed order."""
    lines = [
        f"name: {yaml_scalar(spec['name'])}",
        f"description: {yaml_scalar(spec['description'])}",
        f"metric: {spec['metric']}",
    ]
    if "labels" in spec:
        lines.append("labels: [" + ", ".join(yaml_scalar(x) for x in spec["labels"]) + "]")
    lines.append(f"shots: {spec['shots']}")
    lines.append(f"max_output_tokens: {spec['max_output_tokens']}")
    lines.append("instructions:")
    lines += [f"  - {yaml_scalar(text)}" for text in spec["instructions"]]
    lines += [
        "data:",
        "  train: train.jsonl",
        "  dev: dev.jsonl",
        "  test: test.jsonl",
        f"source: {yaml_scalar(spec['source'])}",
    ]
    return "\n".join(lines) + "\n"


def write_task(out_dir: Path, spec: dict, splits: tuple[list, list, list]) -> None:
    """Write ``task.yaml`` and the three JSONL files of one task, checking disjointness."""
    seen: dict[str, str] = {}
    for split_name, rows in zip(("train", "dev", "test"), splits):
        for r in rows:
            if r["input"] in seen:
                raise ValueError(
                    f"{spec['name']}: input {r['input']!r} in both {seen[r['input']]} and {split_name}"
                )
            seen[r["input"]] = split_name
    folder = out_dir / spec["name"]
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "task.yaml", "w", encoding="utf-8", newline="\n") as fh:
        fh.write(task_yaml(spec))
    for split_name, rows in zip(("train", "dev", "test"), splits):
        with open(folder / f"{split_name}.jsonl", "w", encoding="utf-8", newline="\n") as fh:
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------------------------
# 1. past_tense: English verb -> simple past
# --------------------------------------------------------------------------------------------

# Regular verbs: the past is built by rule (see regular_past); spelling quirks included on purpose
# (consonant doubling, y -> ied, silent e).
REGULAR_VERBS = """
walk talk jump play cook clean open close watch wash help call ask answer carry cry try study
hurry marry worry copy stop plan drop shop hop chat grab hug rob beg nod rub admit prefer
visit listen happen like love hate move live smile dance arrive decide hope use bake agree
enjoy stay pray obey destroy paint start want need wait plant count point end add look kick
laugh climb push pull fill kill fix mix relax touch reach finish pass miss kiss turn borrow
follow explain improve order remember share wonder jog
""".split()

# Verbs whose last consonant doubles before -ed (stressed final syllable or one-syllable CVC).
_DOUBLE = {
    "stop", "plan", "drop", "shop", "hop", "chat", "grab", "hug", "rob", "beg", "nod", "rub",
    "admit", "prefer", "jog",
}

# Regular verbs with an accepted second spelling or form (British -ll-, -t forms).
REGULAR_WITH_ALTERNATIVES: dict[str, tuple[str, list[str]]] = {
    "travel": ("traveled", ["travelled"]),
    "cancel": ("canceled", ["cancelled"]),
    "label": ("labeled", ["labelled"]),
    "learn": ("learned", ["learnt"]),
    "burn": ("burned", ["burnt"]),
    "dream": ("dreamed", ["dreamt"]),
    "spell": ("spelled", ["spelt"]),
    "smell": ("smelled", ["smelt"]),
    "spill": ("spilled", ["spilt"]),
    "lean": ("leaned", ["leant"]),
    "leap": ("leaped", ["leapt"]),
}

# Irregular verbs: base -> (past, accepted alternatives).
IRREGULAR_VERBS: dict[str, tuple[str, list[str]]] = {
    "be": ("was", ["were"]),
    "go": ("went", []),
    "do": ("did", []),
    "have": ("had", []),
    "see": ("saw", []),
    "eat": ("ate", []),
    "drink": ("drank", []),
    "swim": ("swam", []),
    "sing": ("sang", []),
    "ring": ("rang", []),
    "begin": ("began", []),
    "run": ("ran", []),
    "come": ("came", []),
    "become": ("became", []),
    "give": ("gave", []),
    "forgive": ("forgave", []),
    "take": ("took", []),
    "shake": ("shook", []),
    "make": ("made", []),
    "write": ("wrote", []),
    "ride": ("rode", []),
    "drive": ("drove", []),
    "rise": ("rose", []),
    "speak": ("spoke", []),
    "break": ("broke", []),
    "choose": ("chose", []),
    "freeze": ("froze", []),
    "steal": ("stole", []),
    "wear": ("wore", []),
    "tear": ("tore", []),
    "swear": ("swore", []),
    "know": ("knew", []),
    "grow": ("grew", []),
    "throw": ("threw", []),
    "blow": ("blew", []),
    "draw": ("drew", []),
    "fly": ("flew", []),
    "fall": ("fell", []),
    "feel": ("felt", []),
    "keep": ("kept", []),
    "sleep": ("slept", []),
    "sweep": ("swept", []),
    "weep": ("wept", []),
    "creep": ("crept", []),
    "leave": ("left", []),
    "meet": ("met", []),
    "feed": ("fed", []),
    "lead": ("led", []),
    "read": ("read", []),
    "bleed": ("bled", []),
    "flee": ("fled", []),
    "bring": ("brought", []),
    "buy": ("bought", []),
    "think": ("thought", []),
    "fight": ("fought", []),
    "seek": ("sought", []),
    "catch": ("caught", []),
    "teach": ("taught", []),
    "sell": ("sold", []),
    "tell": ("told", []),
    "hold": ("held", []),
    "stand": ("stood", []),
    "understand": ("understood", []),
    "find": ("found", []),
    "get": ("got", []),
    "forget": ("forgot", []),
    "lose": ("lost", []),
    "shoot": ("shot", []),
    "sit": ("sat", []),
    "win": ("won", []),
    "dig": ("dug", []),
    "stick": ("stuck", []),
    "swing": ("swung", []),
    "sting": ("stung", []),
    "say": ("said", []),
    "pay": ("paid", []),
    "lay": ("laid", []),
    "send": ("sent", []),
    "spend": ("spent", []),
    "lend": ("lent", []),
    "bend": ("bent", []),
    "build": ("built", []),
    "mean": ("meant", []),
    "hear": ("heard", []),
    "deal": ("dealt", []),
    "put": ("put", []),
    "cut": ("cut", []),
    "hit": ("hit", []),
    "let": ("let", []),
    "set": ("set", []),
    "shut": ("shut", []),
    "cost": ("cost", []),
    "hurt": ("hurt", []),
    "quit": ("quit", []),
    "spread": ("spread", []),
    "burst": ("burst", []),
    "hide": ("hid", []),
    "bite": ("bit", []),
    "slide": ("slid", []),
    "sink": ("sank", []),
    "shrink": ("shrank", ["shrunk"]),
    "wake": ("woke", []),
    "hang": ("hung", ["hanged"]),
    "dive": ("dived", ["dove"]),
    "shine": ("shone", ["shined"]),
    "light": ("lit", ["lighted"]),
    "kneel": ("knelt", ["kneeled"]),
    "spit": ("spat", ["spit"]),
    "fit": ("fit", ["fitted"]),
    "weave": ("wove", []),
}


# Verbs written later to grow dev and test (train keeps its 47), none of them in the lists above.
EXTRA_REGULAR_VERBS = """
work wish pick pack lock knock check thank return allow offer cover deliver discover guess shout
collect expect fail boil join appear delay employ annoy invite prepare believe receive change
smoke wave save chase taste apply reply dry bury tidy clap skip chop stir regret wrap drag control
""".split()

# Subset of EXTRA_REGULAR_VERBS whose last consonant doubles before -ed.
EXTRA_DOUBLE = {"clap", "skip", "chop", "stir", "regret", "wrap", "drag", "control"}

EXTRA_IRREGULAR_VERBS: dict[str, tuple[str, list[str]]] = {
    "beat": ("beat", []),
    "bet": ("bet", ["betted"]),
    "bind": ("bound", []),
    "breed": ("bred", []),
    "cling": ("clung", []),
    "grind": ("ground", []),
    "shed": ("shed", []),
    "spin": ("spun", []),
    "split": ("split", []),
    "spring": ("sprang", ["sprung"]),
    "stink": ("stank", ["stunk"]),
    "strike": ("struck", []),
    "withdraw": ("withdrew", []),
    "forbid": ("forbade", ["forbad"]),
    "arise": ("arose", []),
    "cast": ("cast", []),
    "upset": ("upset", []),
    "mistake": ("mistook", []),
    "overcome": ("overcame", []),
    "bear": ("bore", []),
    "fling": ("flung", []),
    "undo": ("undid", []),
    "mislead": ("misled", []),
    "rebuild": ("rebuilt", []),
    "rewrite": ("rewrote", []),
    "withhold": ("withheld", []),
    "sling": ("slung", []),
    "stride": ("strode", []),
    "wring": ("wrung", []),
}


def regular_past(verb: str) -> str:
    """Simple past of a regular English verb, with the usual spelling rules."""
    if verb in _DOUBLE or verb in EXTRA_DOUBLE:
        return verb + verb[-1] + "ed"
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ied"
    return verb + "ed"


def make_past_tense(rng: random.Random) -> tuple[list, list, list]:
    regular = [row(v, regular_past(v)) for v in REGULAR_VERBS]
    regular += [row(v, past, alts) for v, (past, alts) in REGULAR_WITH_ALTERNATIVES.items()]
    irregular = [row(v, past, alts) for v, (past, alts) in IRREGULAR_VERBS.items()]
    first = split_stratified([regular, irregular], rng, 0.22, 0.22)
    more_regular = [row(v, regular_past(v)) for v in EXTRA_REGULAR_VERBS]
    more_irregular = [row(v, past, alts) for v, (past, alts) in EXTRA_IRREGULAR_VERBS.items()]
    return grow(first, [more_regular, more_irregular], rng, 0.95)  # nearly all to dev: test has 121 already


# --------------------------------------------------------------------------------------------
# 2. topic: short sentence -> sports | food | weather | technology
# --------------------------------------------------------------------------------------------

TOPIC_SENTENCES: dict[str, list[str]] = {
    "sports": [
        "The striker scored twice in the second half.",
        "Our team lost the final by a single point.",
        "She ran the marathon in under three hours.",
        "The goalkeeper saved a penalty in the last minute.",
        "He hit a home run in the ninth inning.",
        "The tennis match went to a fifth set.",
        "The coach called a timeout with ten seconds left.",
        "They won the league title for the third year in a row.",
        "The referee showed him a red card.",
        "She swam the fastest lap at the national championships.",
        "The cyclist took the lead on the final climb.",
        "He dunked the ball over two defenders.",
        "The boxer was knocked out in the fourth round.",
        "Our quarterback threw three touchdown passes.",
        "The golfer sank a long putt on the last hole.",
        "The sprinter broke the world record in the hundred meters.",
        "The hockey game went into overtime.",
        "She serves harder than anyone on the volleyball team.",
        "The club signed a new midfielder this summer.",
        "The skier crashed on the downhill course.",
        "The fans cheered as the players walked onto the pitch.",
        "The wrestler pinned his opponent in under a minute.",
        "Our rugby team scored a try on the final play.",
        "The umpire called the batter out on strikes.",
        "She won a gold medal in the high jump.",
        "The rowing crew crossed the finish line first.",
        "The point guard made every free throw.",
        "The match ended in a goalless draw.",
        "He finished second in the triathlon.",
        "The chess champion defended her title in the tournament.",
    ],
    "food": [
        "Add a pinch of salt to the pasta water.",
        "The soup needs more garlic and pepper.",
        "She baked a chocolate cake for dessert.",
        "This bread is best eaten warm with butter.",
        "I ordered a cheese pizza with extra olives.",
        "Chop the onions and fry them until golden.",
        "The curry was too spicy for the children.",
        "He makes pancakes with blueberries every Sunday.",
        "Stir the sauce slowly so it does not stick to the pan.",
        "The salad had tomatoes, cucumber and feta.",
        "We had grilled fish and rice for dinner.",
        "Let the dough rise for an hour before baking.",
        "The strawberries were sweet and juicy.",
        "She spread peanut butter on her toast.",
        "Roast the chicken in the oven for forty minutes.",
        "This restaurant serves the best noodles in town.",
        "The cookies came out of the oven crisp and brown.",
        "I like my coffee with milk and no sugar.",
        "Peel the potatoes and boil them until soft.",
        "The cheese tastes sharp and a little salty.",
        "He ate a bowl of cereal with sliced banana.",
        "The recipe calls for two eggs and a cup of flour.",
        "Our lunch was a bowl of lentil soup.",
        "She squeezed fresh lemons to make lemonade.",
        "The steak was cooked medium rare.",
        "Sprinkle a little cinnamon over the rice pudding.",
        "We shared a plate of dumplings and spring rolls.",
        "The apple pie smelled wonderful.",
        "Melt the butter before adding the sugar.",
        "This yogurt is made with fresh mango.",
    ],
    "weather": [
        "It will rain all afternoon tomorrow.",
        "A thick fog covered the valley this morning.",
        "Heavy snow is expected overnight.",
        "The temperature dropped below freezing last night.",
        "Strong winds are forecast along the coast tonight.",
        "The sky cleared up after the storm.",
        "It has been hot and humid all week.",
        "Thunder rumbled in the distance.",
        "The forecast says sunny skies on Saturday.",
        "Hailstones the size of peas fell this afternoon.",
        "A cold front will bring showers on Monday.",
        "The drizzle lasted the whole day.",
        "Lightning flashed across the dark clouds.",
        "There is a chance of frost early tomorrow.",
        "The heat wave will continue until Friday.",
        "A light breeze is blowing from the west.",
        "Clouds will thicken later this evening.",
        "The hurricane is moving toward the coast.",
        "It snowed for three days without a break.",
        "Tomorrow will be cloudy with a high of twelve degrees.",
        "The rain finally stopped around noon.",
        "A blizzard is sweeping across the plains.",
        "Humidity will stay high through the weekend.",
        "The morning was cold and grey.",
        "A rainbow appeared after the shower.",
        "Gusts of up to eighty kilometers per hour are expected.",
        "The dry spell has lasted for six weeks.",
        "Sleet turned to snow after dark.",
        "The sun will come out by midday.",
        "Temperatures will climb to thirty degrees this afternoon.",
    ],
    "technology": [
        "The new phone has a faster processor.",
        "Restart your laptop to install the update.",
        "The app crashes when I open the camera.",
        "She wrote a program that sorts the files.",
        "The website was down for two hours.",
        "Our office switched to a new email server.",
        "This keyboard connects over Bluetooth.",
        "The battery on my tablet drains too quickly.",
        "He upgraded the computer's memory to sixteen gigabytes.",
        "The printer is not connected to the network.",
        "The software update fixed the login bug.",
        "You can back up your photos to the cloud.",
        "The router needs a new password.",
        "The company released a smaller smartwatch.",
        "My screen flickers when the charger is plugged in.",
        "The database stores every customer order.",
        "Install the driver before plugging in the device.",
        "The robot vacuum maps each room of the house.",
        "This laptop has a solid state drive.",
        "The video call kept freezing because of a slow connection.",
        "He built a website using a free template.",
        "Turn on two-factor authentication for your account.",
        "The new chip uses less power.",
        "The search engine returned thousands of results.",
        "The game console needs a firmware update.",
        "She deleted old files to free up disk space.",
        "The headphones pair automatically with the phone.",
        "Our team is testing a new version of the app.",
        "The virus scanner found a suspicious file.",
        "The spreadsheet program froze while saving.",
    ],
}


# 35 more sentences per label, written later to grow dev and test (train keeps its 8 per label).
EXTRA_TOPIC_SENTENCES: dict[str, list[str]] = {
    "sports": [
        "The pitcher struck out the side in the seventh inning.",
        "Our goalie blocked every shot in the first period.",
        "The midfielder curled a free kick into the top corner.",
        "She returned the serve with a sharp backhand.",
        "The relay team dropped the baton on the last leg.",
        "He bowled a perfect strike in the final frame.",
        "The shortstop turned a quick double play.",
        "The gymnast landed her vault without a wobble.",
        "The linebacker sacked the quarterback on third down.",
        "Our captain lifted the trophy after the penalty shootout.",
        "The jockey guided his horse to a narrow win at the racetrack.",
        "The center scored a goal on the power play.",
        "She cleared the bar on her final pole vault attempt.",
        "The fencer won the bout with a quick lunge.",
        "The visiting side equalized in stoppage time.",
        "The slugger launched a grand slam into the bleachers.",
        "The swimmer touched the wall just ahead of her rival.",
        "The shooting guard hit a buzzer beater from half court.",
        "The judo champion threw his opponent for a full point.",
        "The kicker missed a field goal in the final seconds.",
        "The skater landed a triple jump in her free program.",
        "Our defense kept a clean sheet for the entire match.",
        "The runner stole second base on the first pitch.",
        "The winger crossed the ball for an easy header.",
        "She won the singles title without dropping a set.",
        "The batsman hit a six over the boundary rope.",
        "The surfer caught the biggest wave of the contest.",
        "The manager was sent off for arguing with the linesman.",
        "He lifted twice his body weight in the deadlift final.",
        "The archer hit the bullseye with her last arrow.",
        "The libero dug out a hard spike to save the rally.",
        "The rookie was named most valuable player of the series.",
        "The keeper punched the corner kick clear of the box.",
        "The mountain biker won the race despite a flat tire.",
        "The underdogs knocked the champions out of the cup.",
    ],
    "food": [
        "Whisk the eggs with a splash of milk.",
        "The lasagna needs another ten minutes in the oven.",
        "She tossed the noodles with sesame oil and scallions.",
        "This mushroom risotto is creamy and rich.",
        "Marinate the beef in soy sauce overnight.",
        "He sliced the avocado and spread it on rye bread.",
        "The tacos were filled with pork and pickled onions.",
        "Simmer the beans until the liquid thickens.",
        "Our waiter recommended the shrimp with garlic butter.",
        "The carrot cake has a thick layer of cream cheese frosting.",
        "Toast the almonds in a dry pan until fragrant.",
        "I packed a ham sandwich and an apple for lunch.",
        "The porridge tastes better with honey and walnuts.",
        "Grate some parmesan over the spaghetti before serving.",
        "The bakery sells fresh croissants every morning.",
        "She fried the tofu until it was crispy on all sides.",
        "The watermelon was ripe and very refreshing.",
        "Season the lamb with rosemary and black pepper.",
        "We tried a spicy ramen at the new noodle bar.",
        "This hot chocolate is topped with whipped cream.",
        "Fold the blueberries gently into the muffin batter.",
        "The burrito was stuffed with rice, beans and salsa.",
        "He poured maple syrup over his waffles.",
        "Rinse the lentils before adding them to the pot.",
        "The sushi rolls came with ginger and wasabi.",
        "Brush the pastry with beaten egg for a golden crust.",
        "My grandmother makes the best chicken stew.",
        "The mango smoothie was thick and sweet.",
        "Dice the peppers and add them to the omelet.",
        "The vanilla ice cream melted over the warm brownie.",
        "Drain the pasta and stir in the pesto.",
        "She bought fresh basil and mozzarella at the market.",
        "These crackers go well with hummus and olives.",
        "Knead the dough until it feels smooth and elastic.",
        "The roasted vegetables were drizzled with balsamic vinegar.",
    ],
    "weather": [
        "The wind chill will make it feel much colder tonight.",
        "A severe thunderstorm warning is in effect until eight.",
        "Puddles formed everywhere after the downpour.",
        "Expect scattered showers throughout the afternoon.",
        "The snowdrifts were taller than the fences this morning.",
        "A warm southerly wind will raise temperatures tomorrow.",
        "Icy roads are likely after tonight's freezing rain.",
        "The mist lifted from the lake by ten o'clock.",
        "Overcast skies will linger through Thursday.",
        "A tornado touched down near the farm last evening.",
        "Monsoon rains flooded several streets in the city.",
        "The air felt crisp and dry this morning.",
        "Temperatures will fall sharply once the sun sets.",
        "A dusting of snow covered the rooftops at dawn.",
        "The barometer is falling, so a storm may be coming.",
        "Sunshine and mild conditions are expected all weekend.",
        "A tropical storm is forming off the southern coast.",
        "The humidity made the afternoon feel sticky and heavy.",
        "Patchy fog may reduce visibility on the highway tonight.",
        "The drought ended with a week of steady rain.",
        "It was so windy that the umbrellas turned inside out.",
        "Freezing drizzle is expected before dawn on Tuesday.",
        "The UV index will be very high tomorrow.",
        "Fluffy white clouds drifted across a bright blue sky.",
        "Snow flurries are possible in the hills this evening.",
        "A heat advisory has been issued for the entire region.",
        "The overnight low will be around minus five degrees.",
        "Rain is falling sideways in the howling gale.",
        "The dew on the grass froze before sunrise.",
        "Showers will clear from the north by late morning.",
        "A warm spell will melt most of the snow this week.",
        "The sky turned dark and the rain poured down.",
        "Spring has been unusually wet and windy this year.",
        "There is a sixty percent chance of rain on Wednesday.",
        "Black ice formed on the bridge during the night.",
    ],
    "technology": [
        "The laptop fan gets loud when I run large programs.",
        "Clear your browser cache if the page loads slowly.",
        "He replaced the cracked screen on his phone.",
        "The new operating system supports multiple desktops.",
        "The server crashed after the latest software patch.",
        "She plugged the monitor into the docking station.",
        "My wireless mouse stopped responding after the update.",
        "The engineers shipped a fix for the memory leak.",
        "Download the installer from the official site.",
        "The smart speaker answers questions with voice commands.",
        "This charger can power a laptop and a phone at once.",
        "The hard drive made a clicking noise before it failed.",
        "He automated the backups with a short shell script.",
        "The Wi-Fi signal is weak in the upstairs bedroom.",
        "Our website now loads twice as fast on mobile.",
        "The password manager generates long random passwords.",
        "The chatbot answers customer questions on the help page.",
        "Plug the USB stick into the port on the back.",
        "The tablet's touchscreen stopped registering taps.",
        "This camera uploads pictures to the phone over Wi-Fi.",
        "The startup is building a drone that delivers packages.",
        "My computer keeps showing a blue error screen.",
        "Encrypt the drive before sending the laptop for repair.",
        "The program compiles without warnings on the latest compiler.",
        "She configured the printer to scan documents to email.",
        "The e-reader holds thousands of books in its memory.",
        "The developers moved the whole codebase to a new repository.",
        "The satellite internet connection is surprisingly fast.",
        "A hacker stole passwords from the outdated server.",
        "The virtual reality headset tracks every movement of my hands.",
        "The electric car receives software updates over the air.",
        "Press the power button for ten seconds to reset it.",
        "The USB cable is too short to reach the computer.",
        "The printer ran out of ink halfway through the report.",
        "The new graphics card renders video twice as fast.",
    ],
}


def make_topic(rng: random.Random) -> tuple[list, list, list]:
    groups = [[row(s, label) for s in sentences] for label, sentences in TOPIC_SENTENCES.items()]
    # 30 sentences per label -> 8 train, 8 dev, 14 test per label; then 35 more per label -> 22 dev, 13 test.
    first = split_stratified(groups, rng, 8 / 30, 8 / 30)
    more = [[row(s, label) for s in sentences] for label, sentences in EXTRA_TOPIC_SENTENCES.items()]
    return grow(first, more, rng, 22 / 35)


# --------------------------------------------------------------------------------------------
# 3. date_format: "March 5, 2021" -> "2021-03-05"
# --------------------------------------------------------------------------------------------

MONTHS = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]


def _date_rows(rng: random.Random, count: int, seen: set[tuple[int, int, int]]) -> list[Row]:
    """COUNT random dates not in SEEN (which grows), as examples."""
    rows: list[Row] = []
    while len(rows) < count:
        year = rng.randint(1950, 2030)
        month = rng.randint(1, 12)
        day = rng.randint(1, calendar.monthrange(year, month)[1])
        if (year, month, day) not in seen:
            seen.add((year, month, day))
            rows.append(row(f"{MONTHS[month - 1]} {day}, {year}", f"{year:04d}-{month:02d}-{day:02d}"))
    return rows


def make_date_format(rng: random.Random) -> tuple[list, list, list]:
    seen: set[tuple[int, int, int]] = set()
    first = split_counts(_date_rows(rng, 140, seen), rng, 40, 40)
    return grow(first, [_date_rows(rng, 120, seen)], rng, 80 / 120)


# --------------------------------------------------------------------------------------------
# 4. double_number: "23" -> "46"
# --------------------------------------------------------------------------------------------


def make_double_number(rng: random.Random) -> tuple[list, list, list]:
    numbers = rng.sample(range(1, 400), 260)
    rows = [row(str(n), str(2 * n)) for n in numbers]
    return split_counts(rows, rng, 40, 120)


# --------------------------------------------------------------------------------------------
# 5. capitalize_words: "the silver river" -> "The Silver River"
# --------------------------------------------------------------------------------------------

CAP_ADJECTIVES = """
old little silver quiet golden dark bright lost hidden happy broken green frozen wild lonely
secret empty gentle northern early final sleepy sweet stormy hollow
""".split()

CAP_NOUNS = """
river garden moon city forest window house road island letter song mountain harbor kingdom
lantern clock bridge winter ocean village castle meadow tower candle valley star train mirror
orchard storm
""".split()

CAP_PATTERNS = [
    "{a} {n}",
    "the {a} {n}",
    "{a} {b} {n}",
    "{n} and {m}",
    "{n} of the {m}",
    "a {n} by the {m}",
]


def _phrases(rng: random.Random, count: int, seen: set[str]) -> list[Row]:
    """COUNT random phrases not in SEEN (which grows), as examples; the pattern cycles with SEEN's size."""
    rows: list[Row] = []
    while len(rows) < count:
        pattern = CAP_PATTERNS[len(seen) % len(CAP_PATTERNS)]
        a, b = rng.sample(CAP_ADJECTIVES, 2)
        n, m = rng.sample(CAP_NOUNS, 2)
        phrase = pattern.format(a=a, b=b, n=n, m=m)
        if phrase not in seen:
            seen.add(phrase)
            rows.append(row(phrase, " ".join(w[0].upper() + w[1:] for w in phrase.split())))
    return rows


def make_capitalize_words(rng: random.Random) -> tuple[list, list, list]:
    seen: set[str] = set()
    first = split_counts(_phrases(rng, 140, seen), rng, 40, 40)
    return grow(first, [_phrases(rng, 120, seen)], rng, 80 / 120)


# --------------------------------------------------------------------------------------------
# 6. en_to_fr_words: English word -> French word
# --------------------------------------------------------------------------------------------

# English -> (French, accepted alternatives). Nouns without article; adjectives in the masculine
# singular with the feminine (and close synonyms) as alternatives; verbs as "to X" -> infinitive.
FR_NOUNS: dict[str, tuple[str, list[str]]] = {
    "dog": ("chien", ["chienne"]),
    "cat": ("chat", ["chatte"]),
    "house": ("maison", []),
    "car": ("voiture", ["auto", "automobile"]),
    "book": ("livre", []),
    "water": ("eau", []),
    "bread": ("pain", []),
    "apple": ("pomme", []),
    "tree": ("arbre", []),
    "sun": ("soleil", []),
    "moon": ("lune", []),
    "star": ("étoile", []),
    "sea": ("mer", []),
    "river": ("rivière", ["fleuve"]),
    "mountain": ("montagne", []),
    "city": ("ville", []),
    "school": ("école", []),
    "teacher": ("professeur", ["professeure", "enseignant", "enseignante"]),
    "friend": ("ami", ["amie"]),
    "mother": ("mère", []),
    "father": ("père", []),
    "brother": ("frère", []),
    "sister": ("sœur", ["soeur"]),
    "child": ("enfant", []),
    "man": ("homme", []),
    "woman": ("femme", []),
    "boy": ("garçon", []),
    "girl": ("fille", []),
    "day": ("jour", ["journée"]),
    "night": ("nuit", []),
    "week": ("semaine", []),
    "year": ("an", ["année"]),
    "morning": ("matin", ["matinée"]),
    "evening": ("soir", ["soirée"]),
    "hand": ("main", []),
    "head": ("tête", []),
    "eye": ("œil", ["oeil"]),
    "heart": ("cœur", ["coeur"]),
    "door": ("porte", []),
    "window": ("fenêtre", []),
    "table": ("table", []),
    "chair": ("chaise", []),
    "bed": ("lit", []),
    "kitchen": ("cuisine", []),
    "garden": ("jardin", []),
    "flower": ("fleur", []),
    "bird": ("oiseau", []),
    "fish": ("poisson", []),
    "horse": ("cheval", []),
    "cow": ("vache", []),
    "mouse": ("souris", []),
    "milk": ("lait", []),
    "cheese": ("fromage", []),
    "egg": ("œuf", ["oeuf"]),
    "wine": ("vin", []),
    "coffee": ("café", []),
    "sugar": ("sucre", []),
    "salt": ("sel", []),
    "rain": ("pluie", []),
    "snow": ("neige", []),
    "wind": ("vent", []),
    "fire": ("feu", []),
    "money": ("argent", []),
    "street": ("rue", []),
    "boat": ("bateau", []),
    "plane": ("avion", []),
    "key": ("clé", ["clef"]),
    "shoe": ("chaussure", []),
    "hat": ("chapeau", []),
    "shirt": ("chemise", []),
    "word": ("mot", []),
    "song": ("chanson", []),
    "king": ("roi", []),
    "queen": ("reine", []),
    "doctor": ("médecin", ["docteur"]),
    "bridge": ("pont", []),
    "forest": ("forêt", []),
    "island": ("île", []),
    "beach": ("plage", []),
    "cloud": ("nuage", []),
}

FR_ADJECTIVES: dict[str, tuple[str, list[str]]] = {
    "red": ("rouge", []),
    "blue": ("bleu", ["bleue"]),
    "green": ("vert", ["verte"]),
    "black": ("noir", ["noire"]),
    "white": ("blanc", ["blanche"]),
    "yellow": ("jaune", []),
    "small": ("petit", ["petite"]),
    "big": ("grand", ["grande", "gros", "grosse"]),
    "new": ("nouveau", ["nouvelle", "neuf", "neuve"]),
    "old": ("vieux", ["vieille", "ancien", "ancienne"]),
    "good": ("bon", ["bonne"]),
    "bad": ("mauvais", ["mauvaise"]),
    "happy": ("heureux", ["heureuse", "content", "contente"]),
    "sad": ("triste", []),
    "hot": ("chaud", ["chaude"]),
    "cold": ("froid", ["froide"]),
    "beautiful": ("beau", ["belle"]),
    "long": ("long", ["longue"]),
    "short": ("court", ["courte"]),
    "fast": ("rapide", []),
    "slow": ("lent", ["lente"]),
    "easy": ("facile", []),
    "difficult": ("difficile", []),
    "rich": ("riche", []),
    "poor": ("pauvre", []),
    "young": ("jeune", []),
    "strong": ("fort", ["forte"]),
    "full": ("plein", ["pleine"]),
    "empty": ("vide", []),
    "dirty": ("sale", []),
}

FR_VERBS: dict[str, tuple[str, list[str]]] = {
    "to eat": ("manger", []),
    "to drink": ("boire", []),
    "to sleep": ("dormir", []),
    "to speak": ("parler", []),
    "to read": ("lire", []),
    "to write": ("écrire", []),
    "to sing": ("chanter", []),
    "to dance": ("danser", []),
    "to run": ("courir", []),
    "to walk": ("marcher", []),
    "to see": ("voir", []),
    "to hear": ("entendre", []),
    "to open": ("ouvrir", []),
    "to close": ("fermer", []),
    "to give": ("donner", []),
    "to take": ("prendre", []),
    "to buy": ("acheter", []),
    "to sell": ("vendre", []),
    "to come": ("venir", []),
    "to go": ("aller", []),
    "to swim": ("nager", []),
    "to play": ("jouer", []),
    "to work": ("travailler", []),
    "to love": ("aimer", []),
    "to know": ("savoir", ["connaître", "connaitre"]),
    "to find": ("trouver", []),
    "to wait": ("attendre", []),
    "to listen": ("écouter", []),
    "to learn": ("apprendre", []),
    "to understand": ("comprendre", []),
    "to think": ("penser", ["réfléchir"]),
    "to live": ("vivre", ["habiter"]),
    "to begin": ("commencer", []),
    "to finish": ("finir", ["terminer"]),
    "to help": ("aider", []),
}

FR_OTHER: dict[str, tuple[str, list[str]]] = {
    "one": ("un", ["une"]),
    "two": ("deux", []),
    "three": ("trois", []),
    "ten": ("dix", []),
    "hundred": ("cent", []),
    "yes": ("oui", []),
    "no": ("non", []),
    "thank you": ("merci", []),
    "hello": ("bonjour", ["salut"]),
    "goodbye": ("au revoir", []),
    "today": ("aujourd'hui", []),
    "tomorrow": ("demain", []),
    "yesterday": ("hier", []),
    "always": ("toujours", []),
    "never": ("jamais", []),
    "here": ("ici", []),
    "with": ("avec", []),
    "without": ("sans", []),
}


# Entries written later to grow dev and test (train keeps its 41), none of them in the tables above.
EXTRA_FR_NOUNS: dict[str, tuple[str, list[str]]] = {
    "pig": ("cochon", ["porc"]),
    "sheep": ("mouton", ["brebis"]),
    "rabbit": ("lapin", ["lapine"]),
    "lion": ("lion", ["lionne"]),
    "frog": ("grenouille", []),
    "snake": ("serpent", []),
    "wolf": ("loup", ["louve"]),
    "bee": ("abeille", []),
    "butter": ("beurre", []),
    "meat": ("viande", []),
    "rice": ("riz", []),
    "tea": ("thé", []),
    "banana": ("banane", []),
    "strawberry": ("fraise", []),
    "lemon": ("citron", []),
    "carrot": ("carotte", []),
    "cake": ("gâteau", []),
    "spoon": ("cuillère", ["cuiller"]),
    "bottle": ("bouteille", []),
    "bag": ("sac", []),
    "pencil": ("crayon", ["crayon à papier", "crayon de papier"]),
    "paper": ("papier", []),
    "wall": ("mur", []),
    "roof": ("toit", []),
    "computer": ("ordinateur", []),
    "bicycle": ("vélo", ["bicyclette"]),
    "airport": ("aéroport", []),
    "hospital": ("hôpital", []),
    "church": ("église", []),
    "library": ("bibliothèque", []),
    "lake": ("lac", []),
    "son": ("fils", []),
    "uncle": ("oncle", []),
    "aunt": ("tante", []),
    "baby": ("bébé", []),
    "grandmother": ("grand-mère", []),
    "nose": ("nez", []),
    "mouth": ("bouche", []),
    "tooth": ("dent", []),
    "finger": ("doigt", []),
    "sky": ("ciel", []),
    "sand": ("sable", []),
    "winter": ("hiver", []),
    "month": ("mois", []),
    "newspaper": ("journal", []),
}

EXTRA_FR_ADJECTIVES: dict[str, tuple[str, list[str]]] = {
    "heavy": ("lourd", ["lourde"]),
    "tired": ("fatigué", ["fatiguée"]),
    "bitter": ("amer", ["amère"]),
    "wet": ("mouillé", ["mouillée", "humide"]),
    "dry": ("sec", ["sèche"]),
    "funny": ("drôle", ["amusant", "amusante", "marrant", "marrante", "comique"]),
    "ugly": ("laid", ["laide", "moche", "vilain", "vilaine"]),
    "brown": ("marron", ["brun", "brune"]),
    "gray": ("gris", ["grise"]),
    "pink": ("rose", []),
    "purple": ("violet", ["violette"]),
    "sick": ("malade", []),
    "expensive": ("cher", ["chère", "coûteux", "coûteuse"]),
    "high": ("haut", ["haute", "élevé", "élevée"]),
    "deep": ("profond", ["profonde"]),
    "narrow": ("étroit", ["étroite"]),
    "true": ("vrai", ["vraie", "véritable"]),
    "false": ("faux", ["fausse"]),
    "lazy": ("paresseux", ["paresseuse", "fainéant", "fainéante"]),
    "proud": ("fier", ["fière"]),
}

EXTRA_FR_VERBS: dict[str, tuple[str, list[str]]] = {
    "to cook": ("cuisiner", ["cuire", "faire la cuisine"]),
    "to wash": ("laver", []),
    "to drive": ("conduire", []),
    "to jump": ("sauter", []),
    "to laugh": ("rire", []),
    "to travel": ("voyager", []),
    "to send": ("envoyer", []),
    "to answer": ("répondre", []),
    "to ask": ("demander", []),
    "to pay": ("payer", []),
    "to build": ("construire", ["bâtir"]),
    "to forget": ("oublier", []),
    "to win": ("gagner", ["remporter"]),
    "to lose": ("perdre", []),
    "to fall": ("tomber", []),
}

EXTRA_FR_OTHER: dict[str, tuple[str, list[str]]] = {
    "four": ("quatre", []),
    "twenty": ("vingt", []),
    "thousand": ("mille", []),
    "Monday": ("lundi", []),
    "Sunday": ("dimanche", []),
    "often": ("souvent", []),
    "now": ("maintenant", ["à présent"]),
    "very": ("très", []),
    "under": ("sous", ["en dessous de", "au-dessous de"]),
    "good night": ("bonne nuit", []),
}


def make_en_to_fr_words(rng: random.Random) -> tuple[list, list, list]:
    groups = [
        [row(en, fr, alts) for en, (fr, alts) in table.items()]
        for table in (FR_NOUNS, FR_ADJECTIVES, FR_VERBS, FR_OTHER)
    ]
    first = split_stratified(groups, rng, 0.25, 0.25)
    more = [
        [row(en, fr, alts) for en, (fr, alts) in table.items()]
        for table in (EXTRA_FR_NOUNS, EXTRA_FR_ADJECTIVES, EXTRA_FR_VERBS, EXTRA_FR_OTHER)
    ]
    return grow(first, more, rng, 0.88)


# --------------------------------------------------------------------------------------------
# Task definitions
# --------------------------------------------------------------------------------------------

SOURCE = "Generated by tasks/make_tasks.py from {what} (seed {seed})."

TASKS: list[dict] = [
    {
        "name": "past_tense",
        "make": make_past_tense,
        "description": "Give the simple past tense of an English verb.",
        "metric": "normalized_match",
        "shots": 3,
        "max_output_tokens": 6,
        "instructions": [
            "Write the simple past tense of the verb.",
            "Change the verb so that it describes something that already happened, e.g. walk -> walked, go -> went.",
            "past",
        ],
        "source": SOURCE.format(what="hand-written lists of regular and irregular verbs", seed=SEED),
    },
    {
        "name": "topic",
        "make": make_topic,
        "description": "Classify a short sentence by its topic: sports, food, weather or technology.",
        "metric": "label",
        "labels": ["sports", "food", "weather", "technology"],
        "shots": 4,
        "max_output_tokens": 3,
        "instructions": [
            "Say which topic the sentence is about. Answer with one word: sports, food, weather or technology.",
            "What is this sentence about?",
            "Label the topic of the text.",
        ],
        "source": SOURCE.format(what="hand-written sentences, 30 per label", seed=SEED),
    },
    {
        "name": "date_format",
        "make": make_date_format,
        "description": "Rewrite a date written as 'Month D, YYYY' in ISO format YYYY-MM-DD.",
        "metric": "exact_match",
        "shots": 3,
        "max_output_tokens": 12,
        "instructions": [
            "Rewrite the date in the format YYYY-MM-DD, with a two-digit month and day.",
            "Convert the date to ISO 8601.",
            "Write the date with numbers.",
        ],
        "source": SOURCE.format(what="random calendar dates between 1950 and 2030", seed=SEED),
    },
    {
        "name": "double_number",
        "make": make_double_number,
        "description": "Multiply a whole number by two.",
        "metric": "numeric",
        "shots": 3,
        "max_output_tokens": 5,
        "instructions": [
            "Multiply the number by 2 and write only the result.",
            "Double the number.",
            "Do the math.",
        ],
        "source": SOURCE.format(what="260 distinct random integers from 1 to 399", seed=SEED),
    },
    {
        "name": "capitalize_words",
        "make": make_capitalize_words,
        "description": "Capitalize the first letter of every word of a short lowercase phrase.",
        "metric": "exact_match",
        "shots": 3,
        "max_output_tokens": 16,
        "instructions": [
            "Rewrite the phrase with the first letter of every word in upper case, "
            "including small words like 'the' and 'of'.",
            "Capitalize each word.",
            "Make it a title.",
        ],
        "source": SOURCE.format(
            what="random phrases built from hand-written adjective and noun lists and six patterns",
            seed=SEED,
        ),
    },
    {
        "name": "en_to_fr_words",
        "make": make_en_to_fr_words,
        "description": "Translate a common English word into French.",
        "metric": "normalized_match",
        "shots": 3,
        "max_output_tokens": 8,
        "instructions": [
            "Translate the English word into French. Give the French word only, without an article.",
            "Translate to French.",
            "Write it in another language.",
        ],
        "source": SOURCE.format(
            what="a hand-written English-French word list with accepted alternatives", seed=SEED
        ),
    },
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write the tasks into")
    args = parser.parse_args(argv)
    for spec in TASKS:
        splits = spec["make"](random.Random(SEED))
        write_task(args.out, spec, splits)
        sizes = "/".join(str(len(s)) for s in splits)
        print(f"{spec['name']:<18} train/dev/test = {sizes}")


if __name__ == "__main__":
    main()
