"""Word lists behind :mod:`ideamine.agents.textkit`.

Small, hand-made and deliberately boring: enough English to pull roles, nouns and features out
of a one-paragraph software idea without a language model. Every list is a ``frozenset`` or a
``dict`` built once at import, so lookups are fast and nothing here can change at run time.
"""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOP_WORDS = _words(
    """a an the and or but nor so yet if then than that this these those there here where when
    which who whom whose what why how while whether with without within into onto upon from to of
    in on at by for as is are was were be been being am do does did done has have had having can
    could will would shall should may might must it its it's they them their theirs we us our ours
    you your yours he him his she her hers i me my mine one ones also just only very too more most
    much many some any all each every both either neither such own other others same not no yes
    up down out over under about across along around through between among via per etc like
    get gets got make makes made let lets via e.g i.e using used based well even still always
    never often quickly easily simply really lot lots way ways thing things something anything
    everything stuff kind kinds type types variety range number numbers set sets part parts
    built made done given taken written known shown seen found brought bought sold kept held
    left one two three four five six seven eight nine ten first second third together further"""
)

DETERMINERS = _words(
    """a an the their his her its our your my each every any some new own
    of for with daily weekly monthly multiple various different several all no custom
    personal favorite favourite upcoming"""
)

# Words that often start a request rather than describe the product ("I want to build a ...").
PREAMBLE = _words(
    """i we want wants would like to build create make develop design write implement need needs
    an idea for a the my our simple new please help me"""
)

# Clause breakers used when cutting the head noun phrase of an idea.
CLAUSE_BREAKERS = _words(
    """where that which who whom whose to for with in on at by so allowing allows allow helping
    helps help enabling enables enable letting lets let using uses use designed built made
    providing provides offering offers featuring features aimed focused dedicated based and or
    but than from of via into through when while"""
)

GENERIC_NOUNS = _words(
    """app apps application applications platform platforms system systems tool tools software
    website websites site sites service services solution solutions product products
    experience experiences feature features ability abilities option options time times day days
    end ends way world everyone anyone someone people person individual individuals user-friendly
    marketplace marketplaces hub hubs portal portals directory exchange network networks
    dashboard dashboards simulator assistant bot price prices quantity quantities status sale
    sales amount amounts date dates name names title titles description descriptions category
    categories profile profiles entry entries item-based end-to-end skill skills
    interface interfaces functionality capability capabilities program programs project-based
    process processes information data lot variety range detail details access support need needs
    goal goals help use usage hour hours minute minutes second seconds year years week weeks month
    months life addition instance example examples point points aspect aspects level-based mode
    modes gameplay game games version versions platform-based area areas place places form forms
    group groups list lists content contents tracker manager organizer planner idea ideas"""
)

ADJECTIVES = _words(
    """local nearby global digital social personal virtual real professional financial medical
    physical mental visual natural national international educational interactive mobile online
    offline simple easy fast new old daily weekly monthly yearly smart various different unique
    multiple immersive engaging thrilling intuitive friendly fun exciting custom customizable
    best popular favorite favourite personalized personalised secure safe private public small
    large big great good high low free paid premium basic advanced key main top full quick
    efficient effective comprehensive innovative modern classic strategic competitive
    challenging relaxing casual healthy fresh organic independent busy remote young elderly
    amateur indie freelance entire whole complete detailed accurate automatic automated
    real-time realtime 3d 2d fast-paced first-person third-person turn-based open-world
    single-player multiplayer online-only dynamic seamless convenient affordable reliable
    vibrant colorful colourful beautiful stunning intense epic mystical magical dangerous
    hidden special specific certain available current upcoming recent latest own shared
    centralized centralised collaborative creative cultural musical scientific historical
    environmental sustainable portable responsive lightweight robust scalable instant
    holistic optimal ideal proper relevant useful powerful flexible potential harmonic green red
    blue yellow black white orange purple pink golden silver dark bright dietary monetary
    voluntary temporary necessary ordinary"""
)

ADJECTIVE_SUFFIXES = ("ous", "ful", "less", "able", "ible", "ical", "ive", "ish", "ional")

ADJECTIVE_SUFFIX_EXCEPTIONS = _words(
    """table tables vegetable vegetables variable variables timetable cable deliverable
    collectible collectibles archive archives objective objectives detective detectives
    executive executives representative representatives incentive incentives initiative
    initiatives alternative alternatives narrative narratives perspective perspectives
    explosive explosives relative relatives motive motives directive drive drives hive hives
    olive olives native natives fugitive captive dish fish wish radish publish finish polish
    bible bibles"""
)

ING_NOUNS = _words(
    """listing listings booking bookings meeting meetings painting paintings recording
    recordings setting settings clothing building buildings training wedding weddings parking
    housing shipping pricing ceiling evening evenings morning mornings offering offerings
    reading readings drawing drawings earning earnings saving savings warning warnings
    posting postings rating ratings ranking rankings heading headings spring string strings
    thing things king kings wing wings ring rings clothing catering banking marketing
    hosting coaching tutoring accounting bedding dressing"""
)

# A verb lexicon (base forms). Inflected forms are found by textkit's stemming rules.
VERBS = _words(
    """sell buy order book track find search browse create share manage schedule plan log
    record view compare rate review chat message post upload download play compete collect
    explore build design learn practice read write edit organize organise pay send receive
    invite join follow subscribe monitor analyze analyse visualize visualise generate convert
    translate import export sync remind notify customize customise personalize personalise
    navigate choose select defeat eliminate shoot fight race drive solve match earn unlock
    upgrade save budget split calculate estimate predict recommend discover listen watch
    stream capture crop filter tag annotate bookmark summarize summarise draw paint compose
    mix assign approve submit deliver pick rent reserve cancel donate connect meet vote quiz
    test measure reach overcome defend control assemble engage strategize coordinate showcase
    dominate survive enhance increase take progress input add remove categorize categorise
    store access check report discuss comment swap trade exchange lend borrow list
    publish sign register login log-in browse hire apply train coach teach study memorize
    memorise review plant harvest grow cook prepare bake sort rank vote claim redeem scan
    print print share invite dispatch ship pack return refund bid auction negotiate
    collaborate communicate empower contact call email synchronize participate stay notify
    alert detect prevent protect accept decline delete update use bring blur specify maintain
    select rename open close start finish
    complete resume pause stop mark reorder see view archive duplicate undo redo
    encrypt backup restore recover verify validate authenticate authorize automate
    integrate deploy host run execute debug compile explore climb jump dodge steer
    accelerate overtake tune customise decorate arrange furnish budget invest spend
    transfer withdraw deposit borrow lend split settle donate raise fund sponsor
    volunteer attend host organize rsvp check-in navigate travel commute ride park
    drive locate map route guide tour visit discover experience diagnose treat prescribe
    consult prescribe exercise stretch run walk swim lift meditate sleep breathe
    journal reflect brainstorm outline draft proofread format annotate highlight
    clip trim crop resize retouch enhance animate render model sculpt sketch
    perform rehearse sing tune listen discover curate follow gather assign
    decide defeat conquer expand recruit upgrade battle destroy escape rescue
    protect guard solve unscramble guess spell pronounce translate converse practise
    purchase checkout check compare source supply stock restock deliver pickup fulfil
    fulfill process invoice bill quote estimate forecast audit approve reject"""
)

# Verbs that introduce a feature rather than being one ("allows players to ...").
META_VERBS = _words(
    """be is are was were been have has had do does did can could will would should must may
    might offer provide feature allow let help enable include aim want need make get give
    come go become seem keep ensure support contain consist involve require love"""
)

# People and organisations that use software (singular forms).
ROLE_NOUNS = _words(
    """participant contestant entrant consultant user customer player student teacher parent
    child kid doctor patient nurse driver rider
    passenger traveler traveller farmer restaurant chef cook owner manager employee employer
    admin administrator developer designer writer reader musician artist photographer seller
    buyer vendor merchant shopper host guest tenant landlord volunteer coach athlete trainer
    member freelancer client business investor researcher scientist clinician caregiver
    therapist fan listener viewer creator author editor journalist learner tutor instructor
    organizer organiser attendee recruiter candidate applicant courier shop store school
    hospital clinic gardener homeowner contractor planner accountant analyst engineer family
    friend subscriber gamer hiker runner cyclist golfer gardener blogger podcaster streamer
    influencer marketer salesperson agent broker realtor dentist pharmacist physician
    therapist counselor counsellor mentor mentee volunteer donor nonprofit charity team
    startup company companies organization organisation retailer supplier distributor
    wholesaler manufacturer producer consumer resident neighbor neighbour citizen voter
    commuter pilot sailor fisherman collector hobbyist crafter knitter baker brewer
    vet veterinarian groomer walker sitter babysitter nanny cleaner plumber electrician
    mechanic technician operator dispatcher officer inspector auditor lawyer attorney
    professor lecturer researcher librarian archivist curator historian translator
    interpreter speaker presenter moderator community club league referee umpire
    staff worker professional individual adult senior teen teenager beginner expert
    novice enthusiast lover seeker traveller explorer adventurer"""
)

# Role nouns that need the word before them to mean anything ("pet owners", "job seekers").
ROLE_HEADS = _words(
    """owner lover seeker enthusiast manager member provider worker maker keeper holder
    professional leader officer user buyer seller"""
)

# People words that just mean "users".
PEOPLE_SYNONYMS = _words("people person individual individuals everyone anyone someone public")

# Plural "-er/-or" words that are things, not people.
NON_ROLE_AGENTS = _words(
    """others numbers orders letters papers computers monsters characters filters layers
    stickers folders timers controllers containers servers markers headers covers answers
    powers towers centers centres matters flowers colors colours errors sensors monitors
    vectors factors doors floors parameters chapters corners borders meters metres
    headphones speakers trackers planners organizers calendars counters posters banners
    burgers dinners stickers markers printers routers monsters invaders lasers weathers
    waters boosters teasers answers quarters prayers tigers spiders dinosaurs warriors
    trailers containers shooters puzzlers brawlers defenders racers fighters hunters"""
)

# Words just before a noun that make it a role ("for gardeners", "allows knitters").
ROLE_CUES = _words(
    """for between among helps help allows allow lets let enables enable connects connect
    connecting empowers empower serves serve supports support guides guide"""
)

IRREGULAR_PLURALS = {
    "person": "people",
    "child": "children",
    "man": "men",
    "woman": "women",
    "mouse": "mice",
    "goose": "geese",
    "foot": "feet",
    "tooth": "teeth",
    "knife": "knives",
    "wife": "wives",
    "life": "lives",
    "leaf": "leaves",
    "shelf": "shelves",
    "wolf": "wolves",
    "half": "halves",
    "thief": "thieves",
    "calf": "calves",
    "loaf": "loaves",
    "elf": "elves",
    "analysis": "analyses",
    "crisis": "crises",
    "thesis": "theses",
    "criterion": "criteria",
    "phenomenon": "phenomena",
    "cactus": "cacti",
    "bus": "buses",
    "status": "statuses",
    "campus": "campuses",
    "virus": "viruses",
    "bonus": "bonuses",
    "focus": "focuses",
    "census": "censuses",
    "chorus": "choruses",
    "quiz": "quizzes",
    "hero": "heroes",
    "potato": "potatoes",
    "tomato": "tomatoes",
    "echo": "echoes",
    "volcano": "volcanoes",
    "cache": "caches",
    "niche": "niches",
    "avalanche": "avalanches",
    "headache": "headaches",
    "movie": "movies",
    "cookie": "cookies",
    "zombie": "zombies",
    "selfie": "selfies",
    "smoothie": "smoothies",
    "calorie": "calories",
    "rookie": "rookies",
    "brownie": "brownies",
    "goalie": "goalies",
    "pie": "pies",
    "tie": "ties",
    "lie": "lies",
    "shoe": "shoes",
    "toe": "toes",
    "canoe": "canoes",
    "foe": "foes",
    "house": "houses",
    "cause": "causes",
    "clause": "clauses",
    "pause": "pauses",
    "excuse": "excuses",
    "abuse": "abuses",
    "fuse": "fuses",
    "muse": "muses",
    "use": "uses",
    "lens": "lenses",
    "gas": "gases",
    "alias": "aliases",
    "menu": "menus",
    "tofu": "tofus",
}

SINGULARS = {plural: singular for singular, plural in IRREGULAR_PLURALS.items()}

UNCOUNTABLE = _words(
    """data news series species sheep fish deer feedback equipment information software music
    produce money advice furniture homework research content media traffic weather health
    fitness staff luggage baggage rice gameplay progress knowledge wellness nutrition
    inventory merchandise art evidence access analytics physics mathematics math economics
    logistics ethics athletics gymnastics electronics graphics politics statistics
    clothing seafood livestock poultry grain feedback chess golf tennis"""
)

# Trigger word -> capabilities. Each capability is "actor index: phrase" where the index picks
# one of the idea's roles (0 = first role, 1 = second role, - = any) and {thing}/{things} stand
# for the idea's main domain noun.
CAPABILITIES: dict[str, tuple[str, ...]] = {
    "marketplace": (
        "0:list {things} for sale with price and quantity",
        "1:browse available {things} nearby",
        "1:place an order for {things}",
        "0:accept or decline incoming orders",
        "-:track the status of an order",
    ),
    "sell": ("0:list {things} for sale", "1:place an order for {things}"),
    "buy": ("1:compare {things} before buying", "1:place an order for {things}"),
    "shop": ("1:save {things} to a wish list", "1:check out an order"),
    "book": ("1:book an available time slot", "0:manage availability", "1:cancel a booking"),
    "schedule": ("-:see upcoming {things} on a calendar", "-:get a reminder before it starts"),
    "track": ("-:log a new {thing} entry", "-:see trends over time in a chart"),
    "budget": ("-:set a monthly budget per category", "-:see spending against the budget"),
    "expense": ("-:record an expense with amount and category", "-:export expenses to CSV"),
    "learn": ("-:follow a lesson step by step", "-:review progress on each topic"),
    "quiz": ("-:take a short quiz", "-:review wrong answers"),
    "game": ("-:start a new game", "-:see scores on a leaderboard", "-:resume a saved game"),
    "player": ("-:choose a character", "-:unlock new content by progressing"),
    "note": ("-:write and tag a note", "-:search notes by keyword"),
    "share": ("-:share {things} with others by link", "-:control who can see shared {things}"),
    "photo": ("-:upload a photo", "-:organize photos into albums"),
    "video": ("-:upload a video", "-:watch videos in a playlist"),
    "music": ("-:build a playlist", "-:discover new music from listening history"),
    "news": ("-:follow topics of interest", "-:read a daily digest"),
    "chat": ("-:send a message", "-:get notified of new messages"),
    "social": ("-:follow other members", "-:post an update to a feed"),
    "recipe": ("-:save a recipe", "-:build a shopping list from recipes"),
    "health": ("-:log symptoms and readings", "-:share a summary with a clinician"),
    "patient": ("0:view their own records", "1:review a patient summary"),
    "travel": ("-:plan an itinerary", "-:save places to visit"),
    "delivery": ("1:track a delivery in real time", "0:update delivery status"),
    "event": ("-:create an event", "-:RSVP to an event"),
    "task": ("-:create a task with a due date", "-:mark a task done"),
    "todo": ("-:add a to-do item", "-:mark a to-do item done", "-:reorder to-do items"),
    "report": ("-:generate a report", "-:export a report as PDF"),
}

# Capability phrases for any idea: create, browse, search, edit and share the main noun.
GENERIC_CAPABILITIES = (
    "-:create a new {thing}",
    "-:browse and search {things}",
    "-:edit or delete a {thing}",
    "-:get a notification when a {thing} changes",
    "-:export {things} as CSV",
    "-:sign up and manage a profile",
)

# Trigger word -> entity names implied by the idea even when the noun is not written.
IMPLIED_ENTITIES: dict[str, tuple[str, ...]] = {
    "marketplace": ("Listing", "Order"),
    "sell": ("Listing", "Order"),
    "buy": ("Order",),
    "order": ("Order",),
    "shop": ("Order",),
    "book": ("Booking",),
    "booking": ("Booking",),
    "reserve": ("Booking",),
    "reservation": ("Booking",),
    "appointment": ("Appointment",),
    "schedule": ("Event",),
    "track": ("Entry",),
    "log": ("Entry",),
    "chat": ("Message",),
    "message": ("Message",),
    "pay": ("Payment",),
    "payment": ("Payment",),
    "review": ("Review",),
    "rate": ("Review",),
    "game": ("Score",),
    "score": ("Score",),
    "quiz": ("Quiz",),
    "budget": ("Budget",),
    "expense": ("Expense",),
    "todo": ("Task",),
    "task": ("Task",),
}

CATEGORIES: dict[str, tuple[str, ...]] = {
    "game": ("game", "player", "level", "arcade", "puzzle", "shooter", "racing", "rpg", "quest"),
    "finance": ("budget", "expense", "money", "finance", "invoice", "payment", "bank", "invest"),
    "health": ("health", "fitness", "patient", "doctor", "medical", "workout", "symptom", "diet"),
    "education": ("learn", "student", "teacher", "course", "lesson", "quiz", "language", "study"),
    "commerce": ("marketplace", "sell", "buy", "shop", "order", "store", "product", "seller"),
    "food": ("restaurant", "recipe", "food", "meal", "delivery", "menu", "cook"),
    "travel": ("travel", "trip", "itinerary", "flight", "hotel", "commute", "transport", "ride"),
    "media": ("music", "video", "photo", "movie", "podcast", "stream", "news", "image"),
    "social": ("social", "friend", "community", "chat", "share", "follow", "network"),
    "productivity": ("task", "todo", "note", "calendar", "schedule", "document", "office"),
    "developer-tools": ("code", "developer", "api", "deploy", "debug", "repository", "data"),
}

# (trigger words, compliance regime) for compliance the idea implies.
COMPLIANCE_HINTS = (
    (("patient", "medical", "health", "clinic", "hospital", "diagnosis", "hipaa"), "HIPAA"),
    (("payment", "card", "checkout", "credit", "pay", "pci"), "PCI-DSS"),
    (("gdpr", "eu", "europe", "european", "personal"), "GDPR"),
    (("soc2", "enterprise", "audit"), "SOC2"),
    (("iso27001", "iso"), "ISO27001"),
)

FIRST_NAMES: tuple[str, ...] = tuple(
    """Ada Ben Chloe Dev Elena Fiona Gus Hana Ivan Jade Kofi Lena Marco Nadia Omar Priya Quinn
    Rosa Sam Tariq Uma Victor Wen Xavi Yara Zoe Amir Bea Carlos Dana Emil Farah Gita Hugo Isla
    Jonas Kira Luis Maya Noor Olga Pablo Rina Sofia Theo Ulla Vera Will Yusuf Zara""".split()  # noqa: SIM905
)

PYTHON_RESERVED = _words(
    """false none true and as assert async await break class continue def del elif else except
    finally for from global if import in is lambda nonlocal not or pass raise return try while
    with yield match case type id list dict set str int float object print input"""
)

# Role nouns that are often the product or a thing ("a budget planner", "a text editor"): they
# count as roles only in the plural ("planners", "editors").
AMBIGUOUS_ROLES = _words(
    """planner organizer organiser manager editor reader creator driver host store shop agent
    team family club league community school business company startup engineer analyst
    trainer tracker runner walker member professional staff worker"""
)

# Adjectives worth keeping in a title next to a role ("Local Farmers Marketplace").
TITLE_MODIFIERS = _words(
    """local independent small remote busy young elderly amateur indie freelance home student
    solo new first-time urban rural nearby"""
)

# Nouns that name the kind of product; a one-word head of a title from them gets a qualifier.
PRODUCT_TYPES = _words(
    """app application platform tool system service website site marketplace hub portal
    directory exchange network dashboard tracker planner manager organizer assistant bot
    simulator game software solution"""
)


# Genre and medium words: a title made only of these and product types gets a qualifier.
GENRE_WORDS = _words(
    """action puzzle racing strategy shooter simulation sports sport board card arcade adventure
    role-playing social networking software mobile web online music video photo news finance
    health fitness travel language medical office notebook business data development security
    shopping transportation entertainment educational learning family kids management"""
)

# Verb of the first feature -> a product noun for a title ("track" -> "Tracker").
AGENT_NOUNS = {
    "track": "Tracker",
    "plan": "Planner",
    "find": "Finder",
    "search": "Finder",
    "manage": "Manager",
    "organize": "Organizer",
    "schedule": "Scheduler",
    "monitor": "Monitor",
    "learn": "Coach",
    "book": "Booking",
    "sell": "Market",
    "buy": "Market",
    "share": "Share",
    "connect": "Connect",
    "chat": "Chat",
    "edit": "Editor",
    "create": "Studio",
    "generate": "Generator",
    "convert": "Converter",
    "translate": "Translator",
    "compare": "Compare",
    "record": "Recorder",
    "analyze": "Analyzer",
}

# Implied entities that are things people keep, not events between people.
THING_ENTITIES = frozenset(("Listing", "Entry", "Quiz", "Budget", "Expense", "Task", "Score"))

# Words after which a verb is still a verb ("users can select", "to book").
MODALS = frozenset(
    [
        "can",
        "could",
        "will",
        "would",
        "shall",
        "should",
        "may",
        "might",
        "must",
        "to",
        "and",
        "or",
        "also",
        "then",
        "please",
    ]
)

# Genre and medium words that never make a data entity on their own ("3D action game").
NON_ENTITY_WORDS = _words(
    """action racing strategy shooter simulation arcade adventure role-playing networking
    software mobile web online management development entertainment educational learning
    productivity general commerce game"""
)

# Objects of a preposition are not the subject of the verb that follows ("with doctors and pay").
PREPOSITIONS = _words("with to for from by between among of at on in into via against")
